"""`python -m bench` (or `bench/run`): the platform side by side with plain dbt, at three data sizes.

Every figure that is compared is a ratio of two measurements taken in the same run on the same data.
Results: bench/results/<run>/results.json, table.txt, cost_vs_size.png (and bench/results/latest -> that run).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import traceback
from datetime import UTC, datetime

from bench.common import RESULTS_DIR, Scale, log, write_json

ALL_VARIANTS = ["local_subprocess", "local_dbt_runner", "watcher_subprocess", "watcher_dbt_runner"]
# The peers: the same layer DAGs as stock Cosmos builds them, on a stock Airflow (bench/dags_stock)
STOCK_VARIANTS = ["stock_local", "stock_watcher"]
STEPS = ["parse", "plain", "airflow", "compose", "incremental", "profile", "alerts", "snapshot"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--scales", default="1,10,100", help="datagen scales (1 = 100k clickstream events)")
    p.add_argument("--steps", default=",".join(STEPS), help=f"any of {','.join(STEPS)}")
    p.add_argument(
        "--variants", default=",".join(ALL_VARIANTS),
        help=f"execution variants run through Airflow: ours ({', '.join(ALL_VARIANTS)}) and the stock peers "
        f"({', '.join(STOCK_VARIANTS)})",
    )  # fmt: skip
    p.add_argument(
        "--airflow-scales", default=None,
        help="scales run through Airflow (default: all); `100:watcher_subprocess` limits a scale's variants",
    )  # fmt: skip
    p.add_argument("--incremental-scale", type=float, default=None, help="default: the largest scale")
    p.add_argument("--alert-failures", type=int, default=20)
    p.add_argument("--name", default=None, help="results folder name (default: a timestamp)")
    return p


def _airflow_plan(args, scales: list[float]) -> dict[float, list[str]]:
    variants = args.variants.split(",")
    if not args.airflow_scales:
        return {s: variants for s in scales}
    plan: dict[float, list[str]] = {}
    for item in args.airflow_scales.split(","):
        scale, colon, only = item.partition(":")
        plan[float(scale)] = [v for v in only.split("+") if v] if colon else variants
    return plan


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("AIRFLOW__COSMOS__ENABLE_TELEMETRY", "False")
    from bench import dbt_plain, report
    from include.vyapar.settings import dbt_env

    scales = [float(s) for s in args.scales.split(",")]
    steps = set(args.steps.split(","))
    name = args.name or datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = RESULTS_DIR / name
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict = {
        "started_at": datetime.now(UTC).isoformat(), "machine": {
            "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "load_average_at_start": os.getloadavg(),
        },
        "settings": {
            "duckdb_threads": dbt_env()["VYAPAR_DUCKDB_THREADS"],
            "duckdb_memory_limit": dbt_env()["VYAPAR_DUCKDB_MEMORY_LIMIT"],
        },
        "scales": {},
    }  # fmt: skip

    def save() -> None:
        write_json(out_dir / "results.json", results)

    def step(label: str, fn):
        log(f"== {label}")
        started = time.perf_counter()
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 — one broken measurement must not lose the others
            traceback.print_exc()
            value = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"== {label}: {time.perf_counter() - started:.0f} s")
        return value

    def record(container: dict, key: str, label: str, fn) -> None:
        container[key] = step(label, fn)
        save()

    if "parse" in steps:
        record(results, "parse", "parse", lambda: __import__("bench.parse").parse.measure_parse(Scale(scales[0])))
    airflow_plan = _airflow_plan(args, scales)
    for value in scales:
        scale = Scale(value)
        entry = results["scales"].setdefault(scale.name, {"scale": value, "events": scale.events})
        record(
            entry, "full_build", f"{scale.name} data + full build", lambda scale=scale: dbt_plain.build_baseline(scale)
        )
        entry["full_build"].pop("node_seconds", None)
        if "plain" in steps:
            record(
                entry, "plain_daily", f"{scale.name} plain dbt build", lambda scale=scale: dbt_plain.daily_build(scale)
            )
            record(
                entry,
                "plain_per_layer",
                f"{scale.name} plain dbt build, one process per layer",
                lambda scale=scale: dbt_plain.daily_build_per_layer(scale),
            )
        if "snapshot" in steps:
            from bench import snapshot

            record(entry, "snapshot", f"{scale.name} snapshot take + restore", lambda scale=scale: snapshot.measure(scale))
        if "airflow" in steps and value in airflow_plan:
            record(
                entry,
                "airflow",
                f"{scale.name} Airflow daily build",
                lambda scale=scale, value=value: _airflow(
                    scale, airflow_plan[value], "alerts" in steps and value == scales[0], args
                ),
            )
        if "compose" in steps:
            from bench import compose_run

            record(
                entry,
                "compose",
                f"{scale.name} daily build on the compose stack (containers)",
                lambda scale=scale: compose_run.measure(scale),
            )
        if ("airflow" in steps and value in airflow_plan) or "compose" in steps:
            if "plain" in steps:  # plain again after Airflow: the ratio uses the mean of before and after
                record(
                    entry,
                    "plain_daily_after",
                    f"{scale.name} plain dbt build (again)",
                    lambda scale=scale: dbt_plain.daily_build(scale),
                )
    inc_scale = Scale(args.incremental_scale or max(scales))
    if "incremental" in steps:
        record(
            results,
            "incremental",
            f"{inc_scale.name} incremental vs full",
            lambda: dbt_plain.incremental_vs_full(inc_scale),
        )
    if "profile" in steps:
        from bench.profile import explain_analyze, slowest_models

        def profile():
            slow = slowest_models(Scale(max(scales)))
            timings = explain_analyze(Scale(max(scales)), [uid for uid, _ in slow])
            return {"build_seconds": dict(slow), "explain_analyze": timings}

        record(results, "profile", "profile", profile)
    results["finished_at"] = datetime.now(UTC).isoformat()
    save()
    report.write(results, out_dir)
    latest = RESULTS_DIR / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(out_dir.name)
    print((out_dir / "table.txt").read_text())
    log(f"results in {out_dir}")
    return 0


def _airflow(scale: Scale, variants: list[str], with_alerts: bool, args) -> dict:
    """Our variants on the product's platform, then the stock peers on a stock one (each from the same baseline)."""
    ours = [v for v in variants if v not in STOCK_VARIANTS]
    stock = [v for v in variants if v in STOCK_VARIANTS]
    out: dict = {"variants": {}}
    if ours or with_alerts:
        out = _airflow_platform(scale, ours, with_alerts, args, stock=False)
    if stock:
        peers = _airflow_platform(scale, stock, False, args, stock=True)
        out["variants"].update(peers["variants"])
        out["stock_floor"], out["stock_start_seconds"] = peers.get("floor"), peers.get("start_seconds")
    return out


def _airflow_platform(scale: Scale, variants: list[str], with_alerts: bool, args, stock: bool) -> dict:
    from bench.airflow_run import Platform, alert_latency, daily_build, floor, prime_partial_parse
    from tests.fakes.slack_server import FakeSlack
    from tests.fakes.smtp_server import FakeSmtp

    slack, smtp = FakeSlack().start(), FakeSmtp().start()
    # A fresh alert store: an incident left open by an earlier run would make every failure a repeat (not sent).
    alert_store = scale.root / "bench-alerts.sqlite"
    alert_store.unlink(missing_ok=True)
    platform_ = Platform(scale, variants, stock=stock, extra_env={
        "AIRFLOW_CONN_SLACK_ALERTS": slack.connection_json(), "AIRFLOW_CONN_SMTP_ALERTS": smtp.connection_json(),
        "VYAPAR_BENCH_ALERT_FAILURES": str(args.alert_failures),
        "VYAPAR_ALERT_STORE_URL": f"sqlite:///{alert_store}",
    })  # fmt: skip
    out: dict = {"variants": {}}
    try:
        started = time.perf_counter()
        platform_.start()
        out["start_seconds"] = time.perf_counter() - started
        platform_.wait_for_dags(
            [f"vyapar_{layer}__{v}" for v in variants for layer in ("staging", "ml_features")]
            + (["vyapar_bench_alerts"] if with_alerts else [])
            + ["vyapar_bench_floor", "vyapar_bench_warmup"]
        )
        out["floor"] = floor(platform_)
        log(f"{scale.name} Airflow floor{' (stock)' if stock else ''}: one-task DAG run "
            f"{out['floor']['mean_seconds']:.2f} s (mean of 6)")  # fmt: skip
        for variant in variants:
            prime_partial_parse(scale, [variant])
            log(f"{scale.name} Airflow {variant}")
            out["variants"][variant] = daily_build(platform_, variant, scale.restore)
            log(f"{scale.name} Airflow {variant}: {out['variants'][variant]['seconds']:.1f} s")
        if with_alerts:
            # One delivery path (the raising process's inline attempt, then the scheduler's sweeper), keyed "inline"
            # as in earlier results so the report compares them.
            a = alert_latency(platform_, slack)
            out["alerts"] = {"inline": a}
            log(f"alert latency: p50 {a['p50']} p95 {a['p95']} ({a['received']}/{a['failures']})")
    finally:
        platform_.stop()
        slack.stop()
        smtp.stop()
    return out


if __name__ == "__main__":
    raise SystemExit(main())
