"""Parse time: Airflow loading every DAG file of ours (a DagBag of the dags folder), Cosmos loading the dbt project
from the compiled manifest (the product) vs from `dbt ls` (LoadMode.DBT_LS, built here only, for comparison).

Each measurement runs in a fresh interpreter that has imported Airflow already (as the dag-processor has), so the
figure is the parse of our files: importing Cosmos and our package, reading the manifest or running dbt ls, and
building the DAG objects.
"""

from __future__ import annotations

import json
import subprocess

from bench.common import PYTHON, REPO_ROOT, Scale, log

_PROBE = r"""
import json, sys, time
import airflow  # noqa: F401  (pre-imported by the dag-processor)
from airflow.dag_processing.dagbag import DagBag
mode = sys.argv[1]
if mode == "dbt_ls":
    from cosmos.constants import InvocationMode, LoadMode
    from include.vyapar import settings
    from include.vyapar.pipeline import cosmos_config
    original = cosmos_config.render_config
    def render_config(select, with_sources=False):
        config = original(select, with_sources)
        config.load_method = LoadMode.DBT_LS
        config.dbt_executable_path = settings.DBT_BIN  # listing opens no database: no warehouse lock
        config.invocation_mode = InvocationMode.SUBPROCESS  # the binary above, whatever PATH finds first
        return config
    cosmos_config.render_config = render_config
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[2], safe_mode=False)
first = time.perf_counter() - started
tasks = sum(len(d.tasks) for d in bag.dags.values())
print(json.dumps({"seconds": first, "dags": len(bag.dags), "tasks": tasks, "errors": {k: v[-500:] for k, v in bag.import_errors.items()}}))
"""


def measure_parse(scale: Scale, repeats: int = 3) -> dict:
    env = scale.env(
        # dbt ls every parse, as a fresh dag-processor without Cosmos' Variable cache would (measures the loader).
        AIRFLOW__COSMOS__ENABLE_CACHE_DBT_LS="False",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO_ROOT / "dags"),
        # dbt ls for 12 DAGs outlasts the default 30 s file timeout on a busy machine: give it time, measure it.
        AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT="1200",
    )
    out: dict = {}
    for mode in ("manifest", "dbt_ls"):
        runs = []
        for _ in range(repeats if mode == "manifest" else max(1, repeats - 1)):
            proc = subprocess.run(
                [PYTHON, "-c", _PROBE, mode, str(REPO_ROOT / "dags")], env=env, capture_output=True, text=True,
                cwd=REPO_ROOT, timeout=1800,
            )  # fmt: skip
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not line:
                raise RuntimeError(f"parse probe {mode} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
            runs.append(json.loads(line[-1]))
            if runs[-1]["errors"] or not runs[-1]["dags"]:
                raise RuntimeError(f"parse probe {mode}: import errors {runs[-1]['errors']}")
            log(f"parse {mode}: {runs[-1]['seconds']:.2f} s, {runs[-1]['dags']} DAGs, {runs[-1]['tasks']} tasks")
        best = min(runs, key=lambda r: r["seconds"])
        out[mode] = {**best, "all_seconds": [r["seconds"] for r in runs]}
    out["ratio_dbt_ls_over_manifest"] = out["dbt_ls"]["seconds"] / out["manifest"]["seconds"]
    return out
