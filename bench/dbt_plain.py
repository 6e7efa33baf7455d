"""Plain dbt on the same data: build, incremental vs full refresh, memory, and EXPLAIN ANALYZE of the slowest models."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from bench.common import AS_OF, PYTHON, REPO_ROOT, SEED, Scale, Timed, dbt_cmd, log, run_timed
from include.vyapar.runtime.warm_manifest import fingerprint
from include.vyapar.settings import DBT_PROJECT_DIR

# Everything the layer DAGs build (staging .. ml), models and their tests: the daily build.
DAILY_SELECT = ["path:models"]
# An hourly arrival flows staging -> facts through the incremental models: the chain an arrival is processed by
# incrementally (HOURLY_LAYERS: every model of those four layers, for the whole picture).
HOURLY_CHAIN = [
    "stg_clickstream", "stg_orders", "stg_order_items", "stg_payments",
    "int_clickstream_events", "int_orders_enriched", "fct_clickstream_daily", "fct_orders",
]  # fmt: skip
HOURLY_LAYERS = ["path:models/staging", "path:models/intermediate", "path:models/dimensions", "path:models/facts"]


def ensure_data(scale: Scale) -> None:
    if (scale.landing / "_state.json").exists():
        return
    log(f"{scale.name}: generating {scale.events:,} clickstream events")
    proc = run_timed(
        [PYTHON, "-m", "include.vyapar.data.datagen", "init", "--landing", str(scale.landing), "--scale", f"{scale.scale:g}",
         "--seed", str(SEED), "--as-of", AS_OF, "--quiet", "--force"],
        scale.env(),
    )  # fmt: skip
    if proc.returncode:
        raise RuntimeError(proc.output[-3000:])


def dbt(scale: Scale, *args: str, target: str = "target", env: dict | None = None, warm: bool = False) -> Timed:
    """dbt's CLI; `warm`: in a process that has imported dbt (bench.dbt_warm), as the platform's tasks run it:
    `seconds` is then the invocation alone and `cli_seconds` the process's wall time less its warm-up."""
    target_path = scale.root / target
    paths = ("--target-path", str(target_path), "--log-path", str(scale.root / "logs"))
    cmd = [PYTHON, "-m", "bench.dbt_warm", *args, *paths] if warm else dbt_cmd(*args, *paths)
    result = run_timed(cmd, env or scale.env())
    if result.returncode:
        log(f"dbt {' '.join(args)} failed ({result.returncode}):\n{result.output[-3000:]}")
    if warm:
        line = [x for x in result.output.splitlines() if x.startswith('{"seconds"')][-1:]
        out = json.loads(line[0]) if line else {}
        # the process's wall time less the executor-style warm-up (a dbt parse before the timed invocation)
        result.cli_seconds = result.seconds - (out.get("warm_up_seconds") or 0)
        result.seconds = out.get("seconds", result.seconds)
    return result


def node_timings(scale: Scale, target: str = "target") -> dict[str, float]:
    results = json.loads((scale.root / target / "run_results.json").read_text())
    return {r["unique_id"]: r["execution_time"] for r in results["results"]}


def project_fingerprint() -> str:
    """What a parse of the dbt project reads (warm_manifest.fingerprint: every file's size and mtime): a baseline
    built from other models (another table layout) is rebuilt."""
    files = fingerprint([], {}, DBT_PROJECT_DIR).files
    return hashlib.sha256(repr(files).encode()).hexdigest()[:16]


def build_baseline(scale: Scale, force: bool = False) -> dict:
    """The first full build of the scale (dbt build --full-refresh of every model and test); kept as the baseline
    while the dbt project is unchanged."""
    ensure_data(scale)
    info_path = scale.root / "baseline.json"
    if scale.baseline.exists() and info_path.exists() and not force:
        info = json.loads(info_path.read_text())
        if info.get("project") == project_fingerprint() and info.get("settled"):
            return info
        log(f"{scale.name}: the dbt project changed since the baseline was built: building it again")
    for p in (scale.warehouse, Path(f"{scale.warehouse}.wal")):
        p.unlink(missing_ok=True)
    scale.warehouse.parent.mkdir(parents=True, exist_ok=True)
    log(f"{scale.name}: full build (dbt build --full-refresh)")
    result = dbt(scale, "build", "--full-refresh", "--select", *DAILY_SELECT)
    if result.returncode:
        raise RuntimeError(f"{scale.name}: baseline build failed")
    timings = node_timings(scale)
    settled = _settle(scale)
    shutil.copyfile(scale.warehouse, scale.baseline)
    info = {
        "seconds": result.seconds, "peak_rss": result.peak_rss, "nodes": len(timings), "node_seconds": timings,
        "project": project_fingerprint(), "settled": settled,
    }  # fmt: skip
    info_path.write_text(json.dumps(info, indent=2))
    log(
        f"{scale.name}: full build {result.seconds:.1f} s, peak RSS {result.peak_rss / 2**30:.2f} GiB, {len(timings)} nodes"
    )
    return info


def hours_past_lookback() -> int:
    """Hourly arrivals after which an incremental model no longer reaches back into the bulk load: the project's
    var incremental_lookback_hours, plus one."""
    import yaml

    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())
    return int(project["vars"]["incremental_lookback_hours"]) + 1


def _settle(scale: Scale) -> dict:
    """A warehouse as a daily build finds it: past the bulk load. The history lands as one batch (one `_loaded_at`),
    and an incremental model reprocesses what arrived within `incremental_lookback_hours` of its newest arrival: a
    build right after the bulk load deletes and re-inserts whole tables, dearer than the full build (121.7 s against
    102.4 s at 10M). So lookback + 1 hourly arrivals land and one `dbt build` takes them in (untimed); from then on
    a build reprocesses only the lookback's hours (47.4 s at 10M)."""
    hours = hours_past_lookback()
    log(f"{scale.name}: {hours} hourly arrivals taken in by one dbt build (untimed), past the bulk load")
    proc = run_timed(
        [PYTHON, "-m", "include.vyapar.data.datagen", "arrive", "--landing", str(scale.landing), "--hours", str(hours),
         "--quiet"], scale.env(),
    )  # fmt: skip
    if proc.returncode:
        raise RuntimeError(proc.output[-2000:])
    result = dbt(scale, "build", "--select", *DAILY_SELECT)
    if result.returncode:
        raise RuntimeError(f"{scale.name}: the settling build failed")
    return {"arrival_hours": hours, "build_seconds": round(result.seconds, 1)}


def daily_build(scale: Scale) -> dict:
    """The daily build as one plain `dbt build` from the baseline warehouse."""
    scale.restore()
    result = dbt(scale, "build", "--select", *DAILY_SELECT)
    timings = node_timings(scale)
    return {
        "seconds": result.seconds, "peak_rss": result.peak_rss, "ok": result.returncode == 0,
        "nodes": len(timings), "node_seconds_sum": sum(timings.values()),
    }  # fmt: skip


def daily_build_per_layer(scale: Scale) -> dict:
    """The daily build as plain dbt split the way the layer DAGs split it: one `dbt build` CLI process per layer,
    one after the other, from the baseline warehouse. Against the single build: what splitting alone costs (each
    process starts dbt, parses, opens the warehouse cold); against Airflow: what Airflow adds beyond the split."""
    from include.vyapar.pipeline.schedules import load_schedules

    # the layer DAGs' own selections, in schedule order (the sources layer lands data; the daily build starts after)
    layers_of_the_day = [layer for layer in load_schedules().layers if not layer.lands_raw_batch]
    scale.restore()
    dbt(scale, "parse", target="target_layers")  # untimed: each layer then starts from a partial parse, as in Airflow
    layers, node_seconds = {}, 0.0
    for entry in layers_of_the_day:
        layer, select = entry.name, entry.select
        snapshot = None
        if entry.snapshot_before:  # the same work as the layer DAG: the nightly warehouse snapshot, then dbt
            snapshot = run_timed([PYTHON, "-m", "include.vyapar.data.snapshots", "take", "--reason", "bench"],
                                 scale.env(), cwd=REPO_ROOT)  # fmt: skip
            if snapshot.returncode:
                raise RuntimeError(f"snapshot take failed:\n{snapshot.output[-2000:]}")
        # the layer DAGs' test selection (cosmos_config.execution_config): a test runs with the layer that builds
        # all its parents (dbt's default, eager, would run a staging-and-intermediate test with staging, before
        # the intermediate model it checks is rebuilt)
        result = dbt(scale, "build", "--select", *select, "--indirect-selection", "buildable", target="target_layers")
        timings = node_timings(scale, target="target_layers")
        node_seconds += sum(timings.values())
        layers[layer] = {"seconds": result.seconds + (snapshot.seconds if snapshot else 0), "ok": result.returncode == 0,
                         "nodes": len(timings), "cpu_seconds": result.cpu_seconds, "node_seconds": sum(timings.values()),
                         "dbt_seconds": result.seconds, "snapshot_seconds": snapshot.seconds if snapshot else None}  # fmt: skip
        if result.returncode:
            break
    return {
        "seconds": sum(v["seconds"] for v in layers.values()), "ok": all(v["ok"] for v in layers.values()),
        "layers": layers, "node_seconds_sum": node_seconds,
    }  # fmt: skip


def incremental_vs_full(
    scale: Scale, select: list[str] = HOURLY_CHAIN, warmup_hours: int | None = None, repeats: int = 3
) -> dict:
    """One hourly arrival processed incrementally against --full-refresh of the same models, from the same state.

    The history lands as one batch, so the first arrivals after it still fall inside the incremental lookback
    (var incremental_lookback_hours) and re-read it all: `warmup_hours` arrivals are processed first (untimed),
    the steady state of an hourly schedule. Then one more arrives; the incremental run and, on a copy of the same
    starting point, the full refresh are timed, and every model's table is compared row for row. The incremental
    run, a few seconds, is timed `repeats` times, each from a fresh copy of the same start (the median counts):
    on this shared machine one such run measured 4.9 s in one hour and 9.1 s in the next, same code and data. Each
    copy is synced to disk before the clock starts (its dirty pages were being written back during the run).
    Its full refresh, a minute, once."""
    import duckdb

    scale.restore()
    landing_copy = scale.root / "landing-hourly"
    if landing_copy.exists():
        shutil.rmtree(landing_copy)
    shutil.copytree(scale.landing, landing_copy)
    env = scale.env(VYAPAR_LANDING_DIR=str(landing_copy))

    def arrive(hours: int) -> None:
        proc = run_timed(
            [PYTHON, "-m", "include.vyapar.data.datagen", "arrive", "--landing", str(landing_copy), "--hours", str(hours),
             "--quiet"], env,
        )  # fmt: skip
        if proc.returncode:
            raise RuntimeError(proc.output[-2000:])

    warmup_hours = hours_past_lookback() if warmup_hours is None else warmup_hours
    if warmup_hours:
        log(f"{scale.name}: {warmup_hours} hourly arrivals processed first (untimed)")
        arrive(warmup_hours)
        warm = dbt(scale, "run", "--select", *select, target="target-warm", env=env)
        if warm.returncode:
            raise RuntimeError("warm-up run failed")
        # Steady state of an hourly schedule: dbt's partial parse from the previous run (each run here has its
        # own target folder, so without this both timed runs would parse the whole project again).
        for target in ("target-inc", "target-full"):
            (scale.root / target).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(
                scale.root / "target-warm" / "partial_parse.msgpack", scale.root / target / "partial_parse.msgpack"
            )
    full_db = scale.root / "warehouse" / "full.duckdb"
    start_db = scale.root / "warehouse" / "hourly-start.duckdb"
    for db in (full_db, start_db):
        db.unlink(missing_ok=True)
    shutil.copyfile(scale.warehouse, start_db)
    arrive(1)
    incs = []
    for i in range(repeats):
        if i:
            Path(f"{scale.warehouse}.wal").unlink(missing_ok=True)
            shutil.copyfile(start_db, scale.warehouse)
        os.sync()
        log(f"{scale.name}: hourly arrival, incremental ({i + 1} of {repeats})")
        incs.append(dbt(scale, "run", "--select", *select, target="target-inc", env=env, warm=True))
        incs[-1].node_seconds = node_timings(scale, "target-inc") if not incs[-1].returncode else {}
    inc = sorted(incs, key=lambda r: r.seconds)[len(incs) // 2]  # the median run (the last one's tables compared)
    shutil.copyfile(start_db, full_db)
    start_db.unlink()
    os.sync()
    log(f"{scale.name}: hourly arrival, full refresh")
    full = dbt(
        scale, "run", "--full-refresh", "--select", *select, target="target-full",
        env={**env, "VYAPAR_DUCKDB_PATH": str(full_db), "VYAPAR_WAREHOUSE_LOCK": str(full_db.with_suffix(".lock"))},
        warm=True,
    )  # fmt: skip
    # Same rows: every model of the selection, compared both ways, ignoring the processing timestamp.
    diffs, rows = {}, {}
    con = duckdb.connect(str(scale.warehouse), read_only=True)
    con.execute(f"attach '{full_db}' as f (read_only)")
    manifest = json.loads((scale.root / "target-inc" / "manifest.json").read_text())
    for uid in [u for u in node_timings(scale, "target-inc") if u.startswith("model.")]:
        node = manifest["nodes"][uid]
        rel = f'"{node["schema"]}"."{node["alias"]}"'
        # Doubles compared to 1e-6: a parallel sum adds in a different order from one run to the next.
        cols = [
            f'round("{c[0]}", 6)' if c[1] in ("DOUBLE", "FLOAT") else f'"{c[0]}"'
            for c in con.execute(f"describe {rel}").fetchall()
            if c[0] != "_dbt_processed_at"
        ]
        collist = ", ".join(cols)
        missing = con.execute(
            f"select count(*) from (select {collist} from {rel} except all select {collist} from f.{rel})"
        ).fetchone()[0]
        extra = con.execute(
            f"select count(*) from (select {collist} from f.{rel} except all select {collist} from {rel})"
        ).fetchone()[0]
        rows[node["name"]] = con.execute(f"select count(*) from {rel}").fetchone()[0]
        if missing or extra:
            diffs[node["name"]] = {"only_incremental": missing, "only_full": extra}
    con.close()
    if not diffs:  # kept otherwise, to look at
        shutil.rmtree(landing_copy, ignore_errors=True)
        full_db.unlink(missing_ok=True)
    return {
        "incremental_seconds": inc.seconds, "full_refresh_seconds": full.seconds,
        "incremental_runs_seconds": [r.seconds for r in incs],
        "speedup": full.seconds / inc.seconds if inc.seconds else None,
        # The same runs with dbt's process start and import (a dbt CLI call from a shell).
        "cli_incremental_seconds": inc.cli_seconds, "cli_full_refresh_seconds": full.cli_seconds,
        "cli_speedup": full.cli_seconds / inc.cli_seconds if inc.cli_seconds else None,
        "select": select, "warmup_hours": warmup_hours, "same_rows": not diffs, "diffs": diffs, "rows": rows,
        "ok": all(r.returncode == 0 for r in incs) and full.returncode == 0,
        "incremental_node_seconds": inc.node_seconds,
        "full_node_seconds": node_timings(scale, "target-full"),
    }  # fmt: skip
