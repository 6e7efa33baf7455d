"""Compiles the dbt manifest that Cosmos loads the DAGs from (`python -m include.vyapar.manifest`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from include.vyapar import settings
from include.vyapar.warehouse import dbt_command


def compile_manifest() -> float:
    """Run `dbt parse` into the project's target folder; returns seconds taken."""
    started = time.monotonic()
    cmd = dbt_command("parse", "--quiet", "--target-path", str(settings.DBT_MANIFEST_PATH.parent), serialized=False)
    proc = subprocess.run(
        cmd, env={**os.environ, **settings.dbt_cli_env(connect=False)}, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dbt parse failed:\n{proc.stdout}{proc.stderr}")
    return time.monotonic() - started


if __name__ == "__main__":
    try:
        seconds = compile_manifest()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        sys.exit(1)
    print(f"dbt manifest: {settings.DBT_MANIFEST_PATH} ({seconds:.1f} s)")
