"""The daily digest to Slack: the deployment-health metrics of the design notes, from the alert store.

Runs and failures per DAG, success rate, the slowest nodes against their baselines, freshness per layer and the
dbt test pass rate over the last 24 hours. Delivered as a notice (no incident).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from include.vyapar.alerting import lineage
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.incidents import raise_notice
from include.vyapar.alerting.producers import freshness
from include.vyapar.alerting.store import EnqueueResult, get_store

PASSED = {"success", "pass"}
FAILED = {"error", "fail", "runtime error"}


def summarize(now: datetime | None = None, window: timedelta = timedelta(hours=24)) -> dict:
    now = now or datetime.now(UTC)
    since = (now - window).timestamp()
    store, graph = get_store(), lineage.manifest()
    results = [r for r in store.node_results_for(limit=100_000) if (r["finished_at"] or 0) >= since]

    runs: dict[str, set[str]] = defaultdict(set)
    failed_runs: dict[str, set[str]] = defaultdict(set)
    for r in results:
        if r["dag_id"] and r["run_id"]:
            runs[r["dag_id"]].add(r["run_id"])
            if r["status"] in FAILED:
                failed_runs[r["dag_id"]].add(r["run_id"])
    total_runs = sum(len(v) for v in runs.values())
    total_failed = sum(len(v) for v in failed_runs.values())

    tests = [r for r in results if r["resource_type"] in ("test", "unit_test")]
    tests_passed = sum(1 for r in tests if r["status"] in PASSED)

    slowest = []
    latest: dict[str, dict] = {}
    for r in results:
        if r["status"] in PASSED and r["node_id"] not in latest:
            latest[r["node_id"]] = r  # node_results_for is newest first
    for node_id, r in latest.items():
        baseline = store.baseline_for(node_id)
        if baseline and baseline.median > 0:
            slowest.append((r["seconds"] / baseline.median, graph.name(node_id), r["seconds"], baseline.median))
    slowest.sort(reverse=True)

    layers: dict[str, list[str]] = defaultdict(list)
    for f in freshness.check(now):
        layers["sources" if f.kind == "source" else "marts"].append(f.state)
    return {
        "window_hours": window.total_seconds() / 3600,
        "runs": total_runs,
        "failed_runs": total_failed,
        "success_rate": None if not total_runs else (total_runs - total_failed) / total_runs,
        "per_dag": {d: (len(runs[d]), len(failed_runs.get(d, ()))) for d in sorted(runs)},
        "tests": len(tests),
        "test_pass_rate": None if not tests else tests_passed / len(tests),
        "slowest": slowest[:5],
        "freshness": {layer: {s: states.count(s) for s in sorted(set(states))} for layer, states in layers.items()},
        "median_node_seconds": statistics.median([r["seconds"] for r in results]) if results else None,
    }


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def digest_alert(summary: dict, now: datetime | None = None) -> Alert:
    now = now or datetime.now(UTC)
    slow = "; ".join(f"{name} {secs:.1f}s vs {base:.1f}s ({ratio:.0%})" for ratio, name, secs, base in summary["slowest"])
    fresh = "; ".join(f"{layer}: " + ", ".join(f"{n} {state}" for state, n in counts.items())
                      for layer, counts in summary["freshness"].items())  # fmt: skip
    per_dag = ", ".join(f"{d.removeprefix('vyapar_')} {n - f}/{n}" for d, (n, f) in summary["per_dag"].items())
    return Alert(
        kind="digest",
        subject=f"Daily pipeline digest — {summary['runs']} runs, success {_pct(summary['success_rate'])}, "
        f"tests passing {_pct(summary['test_pass_rate'])}",
        summary=f"The last {summary['window_hours']:g} hours of the VyaparBazaar pipelines.",
        facts={
            "Runs": summary["runs"], "Failed runs": summary["failed_runs"],
            "Success rate": _pct(summary["success_rate"]), "Successful runs per DAG": per_dag or "none",
            "dbt tests run": summary["tests"], "Test pass rate": _pct(summary["test_pass_rate"]),
            "Slowest vs baseline": slow or "no baselines yet", "Freshness": fresh or "unknown",
        },  # fmt: skip
        dedup_key=f"digest:{now:%Y-%m-%d}",
        dag_id="vyapar_alert_digest",
        occurred_at=now,
    )


def send(now: datetime | None = None) -> EnqueueResult:
    summary = summarize(now)
    return raise_notice(digest_alert(summary, now), now=now)
