"""The weekly status report: run success per DAG, layer durations against the week before, freshness compliance,
alerts by kind and severity, the tests that failed most (Airflow's metadata database, the alert store, the ledger);
in full by email, a summary line with the health view's link to Slack, both through raise_notice.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import sqlalchemy as sa

from include.vyapar import settings
from include.vyapar.alerting import lineage
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import get_config
from include.vyapar.alerting.incidents import raise_notice
from include.vyapar.alerting.producers import freshness
from include.vyapar.alerting.producers.digest import FAILED, _pct
from include.vyapar.alerting.store import EnqueueResult, get_store
from include.vyapar.data.datagen.landing import LEDGER_DIR
from include.vyapar.pipeline.schedules import load_schedules

WEEK = timedelta(days=7)
HEALTH_PATH = "/vyapar-health/"
FINISHED = ("success", "failed")


@dataclass(frozen=True)
class RunRow:
    dag_id: str
    state: str
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _orm_allowed() -> bool:
    """False in a task process, where Airflow 3 replaces the ORM session with one that refuses to open."""
    from airflow import settings as airflow_settings

    try:
        airflow_settings.Session().close()
    except (RuntimeError, AttributeError):
        return False
    return True


@contextmanager
def _metadata_session() -> Iterator[Any]:
    """Airflow's ORM session where Airflow allows it (the API server, the scheduler, the CLI, tests); in a task
    process, a read-only session of our own on VYAPAR_METADATA_DB_URL, else on Airflow's default SQLite file."""
    url = settings.METADATA_DB_URL
    if url is None and not _orm_allowed():
        default = settings.AIRFLOW_HOME / "airflow.db"
        if not default.exists():
            raise RuntimeError("the weekly report cannot read Airflow's metadata database from this task: set "
                               "VYAPAR_METADATA_DB_URL to its SQLAlchemy URL")  # fmt: skip
        url = f"sqlite:///{default}"
    if url is None:
        from airflow.utils.session import create_session

        with create_session() as session:
            yield session
        return
    from sqlalchemy.orm import Session

    engine = sa.create_engine(url)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def dag_runs(since: datetime, until: datetime) -> list[RunRow]:
    """Finished runs of our DAGs that started in [since, until)."""
    from airflow.models.dagrun import DagRun

    query = sa.select(DagRun.dag_id, DagRun.state, DagRun.start_date, DagRun.end_date).where(
        DagRun.dag_id.like("vyapar\\_%", escape="\\"), DagRun.state.in_(FINISHED),
        DagRun.start_date >= since, DagRun.start_date < until, DagRun.end_date.is_not(None),
    )  # fmt: skip
    with _metadata_session() as session:
        rows = session.execute(query).all()
    return [RunRow(d, str(s), _aware(start), _aware(end)) for d, s, start, end in rows]


def failed_tasks(since: datetime, until: datetime) -> Counter[tuple[str, str]]:
    """Failed task instances (final failures, not retries) per (dag_id, task_id)."""
    from airflow.models.taskinstance import TaskInstance

    query = sa.select(TaskInstance.dag_id, TaskInstance.task_id).where(
        TaskInstance.dag_id.like("vyapar\\_%", escape="\\"), TaskInstance.state == "failed",
        TaskInstance.end_date >= since, TaskInstance.end_date < until,
    )  # fmt: skip
    with _metadata_session() as session:
        return Counter((d, t) for d, t in session.execute(query).all())


def _quantile(values: list[float], q: float) -> float | None:
    """The q-quantile (inclusive); a lone value is its own quantile."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def freshness_compliance(since: datetime, until: datetime, limit: timedelta, landing_dir=None) -> dict[str, float]:
    """Per raw table, the share of the week's hours at whose end its latest landing was within `limit`."""
    ledger = (landing_dir or settings.LANDING_DIR) / LEDGER_DIR / "*.parquet"
    try:
        rows = duckdb.connect().execute(
            f"select table_name, _loaded_at from read_parquet('{ledger}') where _loaded_at < ? order by 2",
            [until.replace(tzinfo=None)],
        ).fetchall()
    except duckdb.IOException:
        rows = []
    landings: dict[str, list[datetime]] = defaultdict(list)
    for table, at in rows:
        landings[table].append(at.replace(tzinfo=UTC))
    graph = lineage.manifest()
    tables = {n["name"] for n in graph.nodes.values()
              if n.get("resource_type") == "source" and n.get("source_name") == freshness.SOURCE_NAME}  # fmt: skip
    hours = [since + timedelta(hours=h + 1) for h in range(int((until - since).total_seconds() // 3600))]
    shares = {}
    for table in sorted(tables | set(landings)):
        times, i, latest, fresh = landings.get(table, []), 0, None, 0
        for hour in hours:
            while i < len(times) and times[i] <= hour:
                latest, i = times[i], i + 1
            fresh += latest is not None and hour - latest <= limit
        shares[table] = fresh / len(hours) if hours else 0.0
    return shares


def alerts_by_kind(since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Incidents opened in the window per (kind, severity): count, resolved, median and max hours to resolve."""
    store = get_store()
    i = store.incidents
    query = sa.select(i.c.kind, i.c.severity, i.c.opened_at, i.c.resolved_at).where(
        i.c.opened_at >= since.timestamp(), i.c.opened_at < until.timestamp()
    )
    groups: dict[tuple[str, str], list[float | None]] = defaultdict(list)
    with store.engine.connect() as conn:
        for kind, severity, opened, resolved in conn.execute(query):
            groups[(kind, severity)].append(None if resolved is None else (resolved - opened) / 3600)
    rank = get_config().severity_rank
    out = []
    for (kind, severity), hours in sorted(groups.items(), key=lambda kv: (-rank(kv[0][1]), kv[0][0])):
        done = [h for h in hours if h is not None]
        out.append({"kind": kind, "severity": severity, "count": len(hours), "resolved": len(done),
                    "median_hours": statistics.median(done) if done else None, "max_hours": max(done, default=None)})  # fmt: skip
    return out


def failed_tests(since: datetime, until: datetime, top: int = 5) -> list[tuple[str, int]]:
    """dbt tests by number of failed (or errored) runs in the window, most first."""
    graph = lineage.manifest()
    counts: Counter[str] = Counter()
    for r in get_store().node_results_since(since.timestamp(), resource_types=("test", "unit_test"), statuses=sorted(FAILED)):
        if r["finished_at"] < until.timestamp():
            counts[graph.name(r["node_id"])] += 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]


def summarize(now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    since, before = now - WEEK, now - 2 * WEEK
    runs = dag_runs(before, now)
    this_week = [r for r in runs if r.start >= since]
    per_dag: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for r in this_week:
        per_dag[r.dag_id][0] += 1
        per_dag[r.dag_id][1] += r.state == "success"
    layers = {}
    for layer in load_schedules().layers:
        durations = {"this": [], "previous": []}
        for r in runs:
            if r.dag_id == layer.dag_id and r.state == "success":
                durations["this" if r.start >= since else "previous"].append(r.seconds)
        layers[layer.name] = {
            week: {"runs": len(values), "p50": _quantile(values, 0.5), "p95": _quantile(values, 0.95)}
            for week, values in durations.items()
        }
    limit = timedelta(minutes=get_config().alerts.stale_data.max_age_minutes)
    total = sum(n for n, _ in per_dag.values())
    succeeded = sum(ok for _, ok in per_dag.values())
    return {
        "since": since, "until": now, "runs": total,
        "success_rate": succeeded / total if total else None,
        "per_dag": {d: {"runs": n, "succeeded": ok, "rate": ok / n} for d, (n, ok) in sorted(per_dag.items())},
        "layers": layers,
        "freshness_limit_hours": limit.total_seconds() / 3600,
        "freshness": freshness_compliance(since, now, limit),
        "alerts": alerts_by_kind(since, now),
        "failed_tests": failed_tests(since, now),
        "failed_tasks": failed_tasks(since, now).most_common(5),
    }  # fmt: skip


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}s" if value < 600 else f"{value / 60:.1f}min"


def _hours(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} h"


def _change(now: float | None, before: float | None) -> str:
    if now is None or not before:
        return ""
    return f" ({(now - before) / before:+.0%})"


def health_url() -> str:
    return get_config().links.airflow_base_url.rstrip("/") + HEALTH_PATH


def report_alert(summary: dict[str, Any]) -> Alert:
    """The full report, in the digest's shape: one fact per section (rendered as the email's table)."""
    week = f"{summary['since']:%Y-%m-%d} to {summary['until']:%Y-%m-%d}"
    per_dag = ", ".join(f"{d.removeprefix('vyapar_')} {_pct(v['rate'])} ({v['succeeded']}/{v['runs']})"
                        for d, v in summary["per_dag"].items())  # fmt: skip
    durations = "; ".join(
        f"{name} p50 {_secs(w['this']['p50'])}{_change(w['this']['p50'], w['previous']['p50'])}, "
        f"p95 {_secs(w['this']['p95'])}{_change(w['this']['p95'], w['previous']['p95'])} "
        f"(week before {_secs(w['previous']['p50'])} / {_secs(w['previous']['p95'])})"
        for name, w in summary["layers"].items() if w["this"]["runs"] or w["previous"]["runs"]
    )  # fmt: skip
    fresh = ", ".join(f"{table} {_pct(share)}" for table, share in summary["freshness"].items())
    alerts = "; ".join(
        f"{a['kind']}/{a['severity']} {a['count']} ({a['resolved']} resolved, median {_hours(a['median_hours'])}, "
        f"max {_hours(a['max_hours'])} to resolve)"
        for a in summary["alerts"]
    )
    tests = ", ".join(f"{name} {n}×" for name, n in summary["failed_tests"])
    tasks = ", ".join(f"{d.removeprefix('vyapar_')}.{t} {n}×" for (d, t), n in summary["failed_tasks"])
    return Alert(
        kind="weekly_report",
        severity="low",
        subject=f"Weekly pipeline report {week} — {summary['runs']} runs, success {_pct(summary['success_rate'])}",
        summary=f"The VyaparBazaar pipelines over the week {week} (UTC), against the week before.",
        facts={
            "Runs": summary["runs"], "Success rate": _pct(summary["success_rate"]),
            "Success rate per DAG": per_dag or "no runs",
            "Duration per layer (this week vs the week before)": durations or "no successful layer runs",
            f"Freshness compliance (share of hours within {summary['freshness_limit_hours']:g} h)": fresh or "no sources",
            "Alerts by kind and severity": alerts or "none",
            "Tests that failed most": tests or "none failed",
            "Tasks that failed most": tasks or "none failed",
        },  # fmt: skip
        links={"Health view": health_url()},
        dedup_key=f"weekly_report:{summary['until']:%Y-%m-%d}",
        dag_id="vyapar_weekly_report",
        occurred_at=summary["until"],
    )


def summary_alert(summary: dict[str, Any]) -> Alert:
    """The Slack line: the headline figures and the health view's link."""
    worst = min(summary["freshness"].items(), key=lambda kv: kv[1], default=None)
    alerts = sum(a["count"] for a in summary["alerts"])
    line = (f"Weekly pipeline report: {summary['runs']} runs, success {_pct(summary['success_rate'])}, "
            f"{alerts} incidents" + (f", least fresh source {worst[0]} {_pct(worst[1])}" if worst else "")
            + " — full report by email")  # fmt: skip
    return Alert(
        kind="weekly_report", severity="low", subject=line, links={"Health view": health_url()},
        dedup_key=f"weekly_report_summary:{summary['until']:%Y-%m-%d}", dag_id="vyapar_weekly_report",
        occurred_at=summary["until"],
    )  # fmt: skip


def send(now: datetime | None = None) -> tuple[EnqueueResult, EnqueueResult]:
    summary = summarize(now)
    return (
        raise_notice(report_alert(summary), now=now, channels=["email"]),
        raise_notice(summary_alert(summary), now=now, channels=["slack"]),
    )
