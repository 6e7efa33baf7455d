"""The daily build on the stack `docker compose up` starts, in real containers (issue 21, item 2).

The project's Dockerfile and docker-compose.yaml, built and started as they are by podman-compose (the stand-in
base images and the Compose-like start order of tests/deployment/compose_stack.py): PostgreSQL as the metadata
database, the WarmLocalExecutor, and the scheduler, dag-processor, triggerer and api-server each in its own
container. One bench-only override (written into the run's folder) binds the two data volumes to this scale's
folders, so the stack builds on the same data as the rest of the bench: the landing, and a copy of the scale's
baseline warehouse, both owned by the image's user (uid 50000, group 0). The `.env` is .env.example's with fresh
secrets and DAGs paused at creation.

The product's own layer DAGs (vyapar_staging .. vyapar_ml_features, the ones a user's scheduler runs at night) are
triggered one after another through the REST API: once untimed (each DAG's first run fills its dbt partial-parse
cache, as any day after the first finds it), then, from the baseline again, timed.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from bench.airflow_run import LAYERS, _ts
from bench.common import Scale, log

IMAGE_UID = 50000


def _override(path: Path, warehouse: Path, landing: Path) -> Path:
    path.write_text(
        "# bench only: the data volumes bound to the bench scale's folders\n"
        "volumes:\n"
        f"  vyapar-warehouse:\n    driver: local\n    driver_opts: {{type: none, o: bind, device: '{warehouse}'}}\n"
        f"  vyapar-landing:\n    driver: local\n    driver_opts: {{type: none, o: bind, device: '{landing}'}}\n"
    )
    return path


def _daily_build(api, stack, scale: Scale, warehouse: Path) -> dict:
    for p in warehouse.glob("vyaparbazaar.duckdb*"):
        p.unlink()
    scale.restore(warehouse / "vyaparbazaar.duckdb")
    _own(warehouse)
    runs = []
    for layer in LAYERS:
        dag_id = f"vyapar_{layer}"
        run_id = api.trigger(dag_id, {})
        state = api.wait_run(dag_id, run_id, timeout=3600)
        run = api.get(f"/dags/{dag_id}/dagRuns/{run_id}")
        seconds = (_ts(run["end_date"]) - _ts(run["start_date"])) if run.get("end_date") else None
        runs.append({"dag_id": dag_id, "state": state, "seconds": seconds})
        log(f"  compose {dag_id}: {state} in {seconds:.1f} s")
        if state != "success":
            break
    ok = len(runs) == len(LAYERS) and all(r["state"] == "success" for r in runs)
    return {"ok": ok, "seconds": sum(r["seconds"] or 0 for r in runs), "runs": runs}


def _own(folder: Path) -> None:
    """The image's user (uid 50000, group 0, as docker-compose.yaml runs it) owns the bound folders."""
    for path in (folder, *folder.rglob("*")):
        os.chown(path, IMAGE_UID, 0)


def measure(scale: Scale) -> dict:
    from tests.deployment.compose_stack import Stack, env_values, missing_tools
    from tests.deployment.images import build as images
    from tests.deployment.rest_api import Api, wait_for

    missing = missing_tools()
    if missing:
        raise RuntimeError(f"the compose stack cannot run here: {'; '.join(missing)}")
    workdir = scale.root / "compose"
    shutil.rmtree(workdir, ignore_errors=True)
    warehouse = workdir / "warehouse"
    warehouse.mkdir(parents=True)
    (warehouse / ".bootstrapped-duckdb").touch()  # airflow-init: the warehouse is there, no first build
    figures: dict = {}
    started = time.monotonic()
    images.ensure(log_dir=workdir / "images")
    figures["base_images_seconds"] = round(time.monotonic() - started, 1)
    _own(scale.landing)
    override = _override(workdir / "compose.bench-override.yaml", warehouse, scale.landing)
    stack = Stack(workdir, env_values(f"{scale.scale:g}"), overrides=(override,), prefix="vyaparbench")
    started = time.monotonic()
    stack.compose("--podman-build-args", " ".join(images.BUILD_ARGS), "build", "airflow-init", timeout=1800)
    figures["project_image_seconds"] = round(time.monotonic() - started, 1)
    try:
        started = time.monotonic()
        stack.up()
        figures["up_until_healthy_seconds"] = round(time.monotonic() - started, 1)
        api = Api(stack.api_url, stack.values["AIRFLOW_ADMIN_USERNAME"], stack.values["AIRFLOW_ADMIN_PASSWORD"])
        wanted = {f"vyapar_{layer}" for layer in LAYERS}
        wait_for(lambda: wanted <= {d["dag_id"] for d in api.get("/dags", limit=100)["dags"]}, 300, "the layer DAGs")
        log(f"{scale.name}: compose stack up in {figures['up_until_healthy_seconds']} s; untimed pass")
        figures["untimed_first_pass"] = _daily_build(api, stack, scale, warehouse)
        log(f"{scale.name}: compose stack, timed pass")
        figures.update(_daily_build(api, stack, scale, warehouse))
        return figures
    finally:
        stack.save_logs("bench", workdir / "logs")
        stack.down(volumes=True)
