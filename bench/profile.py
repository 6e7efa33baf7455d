"""EXPLAIN ANALYZE of the slowest models of a build, on that scale's baseline warehouse (read-only), with the
DuckDB settings the dbt profile uses. Writes each plan to results/profiles/<scale>/<model>.txt."""

from __future__ import annotations

import json
import os
import time

from bench.common import RESULTS_DIR, Scale, log


def slowest_models(scale: Scale, n: int = 5, target: str = "target") -> list[tuple[str, float]]:
    results = json.loads((scale.root / target / "run_results.json").read_text())["results"]
    models = [(r["unique_id"], r["execution_time"]) for r in results if r["unique_id"].startswith("model.")]
    return sorted(models, key=lambda x: -x[1])[:n]


def explain_analyze(scale: Scale, unique_ids: list[str], target: str = "target", label: str = "") -> dict[str, dict]:
    import duckdb

    manifest = json.loads((scale.root / target / "manifest.json").read_text())
    con = duckdb.connect()
    # Under the warehouse's own catalog name: the compiled SQL names "vyaparbazaar"."schema"."table".
    con.execute(f"attach '{scale.baseline}' as {scale.warehouse.stem} (read_only)")
    con.execute(f"use {scale.warehouse.stem}")
    con.execute(f"set threads = {int(os.environ.get('VYAPAR_DUCKDB_THREADS', '2'))}")
    con.execute(f"set memory_limit = '{os.environ.get('VYAPAR_DUCKDB_MEMORY_LIMIT', '4GB')}'")
    out_dir = RESULTS_DIR / "profiles" / scale.name
    out_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, dict] = {}
    for uid in unique_ids:
        node = manifest["nodes"][uid]
        path = scale.root / target / "compiled" / node["package_name"] / node["original_file_path"]
        if not path.exists():
            log(f"no compiled SQL for {uid} at {path}")
            continue
        sql = path.read_text()
        started = time.perf_counter()
        plan = "\n".join(row[1] for row in con.execute(f"explain analyze {sql}").fetchall())
        seconds = time.perf_counter() - started
        (out_dir / f"{node['name']}{label}.txt").write_text(plan)
        found[node["name"]] = {"seconds": seconds, "plan": str(out_dir / f"{node['name']}{label}.txt")}
        log(f"{scale.name} {node['name']}: {seconds:.1f} s (EXPLAIN ANALYZE)")
    con.close()
    return found


if __name__ == "__main__":
    import sys

    scale = Scale(float(sys.argv[1]))
    names = sys.argv[2:] or [uid for uid, _ in slowest_models(scale)]
    names = [n if n.startswith("model.") else f"model.vyaparbazaar.{n}" for n in names]
    print(json.dumps(explain_analyze(scale, names), indent=1))
