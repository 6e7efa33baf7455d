"""Compiles the dbt manifest that Cosmos loads the DAGs from (`python -m include.vyapar.pipeline.manifest`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from include.vyapar import settings
from include.vyapar.data.warehouse import dbt_command

# What Cosmos reads of a manifest (cosmos.dbt.graph: nodes, sources, exposures, metadata, selectors). The macros
# (dbt's own included) are ~40% of dbt's file, and every DAG of our one DAG file parses the file again.
COSMOS_KEYS = ("metadata", "nodes", "sources", "exposures", "selectors")


def cosmos_manifest_path(manifest_path: Path | None = None) -> Path:
    """The trimmed manifest the DAGs load, beside dbt's own."""
    return (manifest_path or settings.DBT_MANIFEST_PATH).with_name("manifest.cosmos.json")


def write_cosmos_manifest(manifest_path: Path | None = None) -> Path:
    manifest_path = manifest_path or settings.DBT_MANIFEST_PATH
    manifest = json.loads(manifest_path.read_text())
    target = cosmos_manifest_path(manifest_path)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps({k: manifest[k] for k in COSMOS_KEYS if k in manifest}, separators=(",", ":")))
    tmp.replace(target)
    return target


def compile_manifest() -> float:
    """Run `dbt parse` into the project's target folder (and write the DAGs' trimmed copy); returns seconds."""
    started = time.monotonic()
    cmd = dbt_command("parse", "--quiet", "--target-path", str(settings.DBT_MANIFEST_PATH.parent), serialized=False)
    proc = subprocess.run(
        cmd, env=settings.subprocess_env(**settings.dbt_cli_env(connect=False)), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{proc.stdout}{proc.stderr}")
    write_cosmos_manifest()
    return time.monotonic() - started


if __name__ == "__main__":
    try:
        seconds = compile_manifest()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    print(f"dbt manifest: {settings.DBT_MANIFEST_PATH} ({seconds:.1f} s)")
