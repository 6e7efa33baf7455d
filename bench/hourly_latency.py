"""From a raw batch landing to the hourly layers having it, end to end through the scheduler (issue 21, item 5).

`bin/start` on its own data folder (the newcomer's simulated arrivals), every DAG paused but the three hourly
layers: sources (:05 IST, lands the hour's batch and checks it), staging (:15) and intermediate (:30). The script
waits for the next :05 slot, takes the batch the sources run landed (its id from the landing task's XCom), then
waits for the staging and intermediate runs of the same hour and, after each, counts the batch's rows in
`stg_clickstream` and `int_clickstream_events` (the warehouse opened read-only between runs). Each interval is
split into the wait for the cron slot, the scheduler's start of the run and the run itself.

    .venv/bin/python -m bench.hourly_latency          # up to 75 minutes; results: bench/results/hourly_latency.json
    .venv/bin/python -m bench.hourly_latency --soon   # the same three crons moved together to start in ~10 minutes

`--soon` gives the platform a copy of schedules.yaml (VYAPAR_SCHEDULES_FILE, as a user points at their own) whose
three hourly crons keep their minutes apart (0, +10, +25) but start at the first minute 10 minutes from now: the
same slots relative to each other, measured in half an hour instead of up to 75 minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import requests
import yaml

from bench.common import REPO_ROOT, RESULTS_DIR, log
from bench.platform import Platform, bin_start, utc

LAYERS = {"sources": 5, "staging": 15, "intermediate": 30}  # minute past the hour, IST (schedules.yaml)
SETTLE = timedelta(minutes=4)  # the runs the unpause itself starts (catchup off: the latest interval) end by then
SOON = timedelta(minutes=10)


def next_slot(after: datetime, minute: int, tz: str = "Asia/Kolkata") -> datetime:
    """The first time after `after` (naive UTC) whose minute past the hour in `tz` is `minute`, as naive UTC."""
    local = after.replace(tzinfo=UTC).astimezone(ZoneInfo(tz)).replace(second=0, microsecond=0)
    slot = local.replace(minute=minute)
    while slot <= local:
        slot += timedelta(hours=1)
    return slot.astimezone(UTC).replace(tzinfo=None)


def wait_for_run(platform: Platform, dag_id: str, run_after: datetime, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            run = next((r for r in platform.runs(dag_id) if utc(r["run_after"]) == run_after), None)
        except requests.RequestException:  # the API slow under load: ask again
            time.sleep(5)
            continue
        if run and run["state"] in ("success", "failed"):
            assert run["state"] == "success", f"{dag_id} {run['dag_run_id']} {run['state']}"
            return run
        time.sleep(5)
    raise AssertionError(f"no finished run of {dag_id} for {run_after:%H:%M} UTC within {timeout:.0f} s")


def rows_of_batch(data: Path, table: str, where: str, params: list) -> int:
    import duckdb

    for _ in range(60):  # a run of another DAG may hold the file for a moment
        try:
            with duckdb.connect(str(data / "warehouse" / "vyaparbazaar.duckdb"), read_only=True) as con:
                schema = con.execute(
                    "select table_schema from information_schema.tables where table_name = ?", [table]
                ).fetchone()[0]
                return con.execute(f'select count(*) from "{schema}"."{table}" where {where}', params).fetchone()[0]
        except duckdb.IOException:
            time.sleep(1)
    raise RuntimeError(f"the warehouse stayed locked; could not count {table}")


def run_figures(platform: Platform, dag_id: str, run: dict) -> dict:
    tis = platform.task_instances(dag_id, run["dag_run_id"])
    first_start = min(utc(t["start_date"]) for t in tis if t["start_date"])
    slot = utc(run["run_after"])
    return {
        "slot_utc": slot.isoformat(),
        "slot_to_first_task_start_seconds": round((first_start - slot).total_seconds(), 1),
        "run_seconds": round((utc(run["end_date"]) - utc(run["start_date"])).total_seconds(), 1),
        "end_utc": utc(run["end_date"]).isoformat(),
    }


def _schedules_soon(root: Path, tz: str = "Asia/Kolkata") -> Path:
    """schedules.yaml with the hourly layers' crons moved together: sources at the first minute SOON from now."""
    from include.vyapar import settings

    start = (datetime.now(UTC) + SOON).astimezone(ZoneInfo(tz))
    declared = yaml.safe_load(settings.SCHEDULES_FILE.read_text())
    for layer in declared["layers"]:
        if layer["name"] in LAYERS:
            LAYERS[layer["name"]] = (start.minute + LAYERS[layer["name"]] - 5) % 60
            layer["cron"] = f"{LAYERS[layer['name']]} * * * *"
    path = root / "schedules.yaml"
    path.write_text(yaml.safe_dump(declared, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(prog="python -m bench.hourly_latency", description=__doc__.split("\n\n")[0])
    args.add_argument("--soon", action="store_true", help="the three crons moved together to start in ~10 minutes")
    soon = args.parse_args(argv).soon
    sys.path.insert(0, str(REPO_ROOT))
    root = Path(tempfile.mkdtemp(prefix="vyapar-hourly-latency-"))
    dotenv = "# no alert channel: this measures the layers\n"
    if soon:
        dotenv += f"VYAPAR_SCHEDULES_FILE={_schedules_soon(root)}\n"
    with bin_start(root, dotenv) as platform:
        for layer in LAYERS:
            platform.unpause(f"vyapar_{layer}")
        now = datetime.now(UTC).replace(tzinfo=None)
        slot = next_slot(now + (timedelta(minutes=2) if soon else SETTLE), LAYERS["sources"])
        log(f"platform up at {platform.base}; hourly layers unpaused; the measured hour's sources slot: {slot} UTC")
        time.sleep(max(0.0, (slot - datetime.now(UTC).replace(tzinfo=None)).total_seconds()))

        sources = wait_for_run(platform, "vyapar_sources", slot, 15 * 60)
        landed = platform.xcom("vyapar_sources", sources["dag_run_id"], "land_raw_batch")
        land_ti = next(t for t in platform.task_instances("vyapar_sources", sources["dag_run_id"])
                       if t["task_id"] == "land_raw_batch")  # fmt: skip
        landed_at = utc(land_ti["end_date"])
        batch, loaded_at = landed["batch_id"], landed["loaded_at"]
        log(f"batch {batch} landed at {landed_at} UTC ({landed['rows']})")
        figures: dict = {"crons_ist_minute": dict(LAYERS), "moved_to_soon": soon, "batch_id": batch, "landed_at_utc": landed_at.isoformat(), "rows_landed": landed["rows"],
                         "sources": run_figures(platform, "vyapar_sources", sources)}  # fmt: skip
        checks = {
            "staging": ("stg_clickstream", "_batch_id = ?", [batch]),
            "intermediate": ("int_clickstream_events", "_loaded_at >= cast(? as timestamp)", [loaded_at]),
        }
        for layer, (table, where, params) in checks.items():
            layer_slot = slot + timedelta(minutes=(LAYERS[layer] - LAYERS["sources"]) % 60)
            run = wait_for_run(platform, f"vyapar_{layer}", layer_slot, 40 * 60)
            rows = rows_of_batch(platform.data, table, where, params)
            entry = run_figures(platform, f"vyapar_{layer}", run)
            entry[f"{table}_rows_of_the_batch"] = rows
            entry["landed_to_built_seconds"] = round((utc(run["end_date"]) - landed_at).total_seconds(), 1)
            entry["waiting_for_the_slot_seconds"] = round((layer_slot - landed_at).total_seconds(), 1)
            figures[layer] = entry
            log(f"{layer}: {entry}")
            assert rows > 0, f"{table} holds no row of batch {batch} after the {layer} run"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "hourly_latency.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
