"""The figures of the pipeline-health view, gathered from where they already live (nothing re-computed here):

- freshness: `alerting.producers.freshness.check()`, the watcher's own computation (ledger landings, scheduled mart builds);
- dbt model durations and baselines: the alert store's node results and `baselines()` (the slow alert's median);
- alerts, their incidents and deliveries, and the outbox: the alert store's reading API;
- the latest run of every VyaparBazaar DAG: Airflow's metadata database (when running inside Airflow).

Each panel is gathered on its own: one failing source shows as an error on its panel, not a broken page.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from include.vyapar.alerting.alert import task_log_url
from include.vyapar.alerting.store import AlertStore, get_store

log = logging.getLogger(__name__)

WINDOW_DAYS = 7
MAX_POINTS = 48  # durations per model in its chart (the most recent)
MAX_ALERTS = 200
# Freshness colours: dbt source freshness warns after half the limit (1 h of 2 h); past the limit is an alert.
AMBER_FROM = 0.5
GREEN, AMBER, RED, GREY = "green", "amber", "red", "grey"


@dataclass(frozen=True)
class FreshnessRow:
    node_id: str
    name: str
    kind: str  # source | mart
    state: str  # fresh | stale | unknown (freshness.py's verdict, the one the watcher alerts on)
    colour: str
    age_seconds: float | None
    limit_seconds: float
    last_at: datetime | None
    expected_at: datetime | None
    note: str = ""


@dataclass(frozen=True)
class DurationPoint:
    finished_at: datetime
    seconds: float
    status: str
    dag_id: str | None
    run_id: str | None


@dataclass(frozen=True)
class ModelDurations:
    node_id: str
    name: str
    points: list[DurationPoint]
    baseline_seconds: float | None
    baseline_samples: int
    threshold_ratio: float
    colour: str

    @property
    def latest(self) -> DurationPoint | None:
        return self.points[-1] if self.points else None

    @property
    def ratio(self) -> float | None:
        if not self.points or not self.baseline_seconds:
            return None
        return self.points[-1].seconds / self.baseline_seconds


@dataclass(frozen=True)
class Delivery:
    channel: str
    destination: str
    status: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class AlertRow:
    id: int
    created_at: datetime
    kind: str
    severity: str
    status: str
    subject: str
    incident_key: str | None
    incident_status: str | None
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    run_url: str | None
    deliveries: list[Delivery]
    note: str = ""


@dataclass(frozen=True)
class Outbox:
    backlog: int
    dead: int
    counts: dict[str, dict[str, int]]
    oldest_pending_at: datetime | None
    last_error: str | None
    last_error_channel: str | None
    last_error_at: datetime | None
    last_error_status: str | None


@dataclass(frozen=True)
class DagRunRow:
    dag_id: str
    run_id: str
    state: str
    run_type: str
    start_date: datetime | None
    end_date: datetime | None
    run_url: str


@dataclass
class Snapshot:
    generated_at: datetime
    window_days: int
    freshness: list[FreshnessRow] = field(default_factory=list)
    models: list[ModelDurations] = field(default_factory=list)
    alerts: list[AlertRow] = field(default_factory=list)
    alerts_total: int = 0
    outbox: Outbox | None = None
    runs: list[DagRunRow] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # panel -> what went wrong gathering it
    timings: dict[str, float] = field(default_factory=dict)  # panel -> seconds spent gathering it

    def to_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        record = plain(dataclasses.asdict(self))
        for model, source in zip(record["models"], self.models, strict=True):
            model["ratio"] = source.ratio
        return record


def _ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def run_url_of(dag_id: str, run_id: str) -> str:
    """A DAG run's page in the Airflow UI, relative to this view (/vyapar-health/): right behind any proxy."""
    return f"../dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


# ---------------------------------------------------------------------------------------------- freshness
def freshness_colour(f: Any) -> tuple[str, str]:
    """Green/amber/red for one `alerting.producers.freshness.Freshness`, and a note saying why."""
    if f.state == "unknown":
        return GREY, "no landing yet" if f.kind == "source" else "no Airflow build yet"
    if f.state == "stale":
        return RED, "past the limit: alerted"
    if f.kind == "source":
        return (AMBER, "older than dbt's warn_after") if f.ratio >= AMBER_FROM else (GREEN, "")
    if f.expected_at is not None and f.last_at is not None and f.last_at < f.expected_at:
        return AMBER, f"scheduled build {f.expected_at:%H:%M} UTC not done yet"
    return GREEN, ""


def gather_freshness(now: datetime) -> list[FreshnessRow]:
    from include.vyapar.alerting.producers import freshness

    rows = []
    for f in freshness.check(now):
        colour, note = freshness_colour(f)
        rows.append(
            FreshnessRow(
                node_id=f.node_id, name=f.name, kind=f.kind, state=f.state, colour=colour,
                age_seconds=None if f.age is None else f.age.total_seconds(), limit_seconds=f.limit.total_seconds(),
                last_at=f.last_at, expected_at=f.expected_at, note=note,
            )
        )  # fmt: skip
    order = {RED: 0, AMBER: 1, GREY: 2, GREEN: 3}
    return sorted(rows, key=lambda r: (r.kind != "source", order[r.colour], r.name))


# ---------------------------------------------------------------------------------------------- durations
def gather_models(store: AlertStore, since: float) -> list[ModelDurations]:
    from include.vyapar.alerting import lineage

    graph = lineage.manifest()
    threshold = store.config.alerts.slow.threshold_ratio
    baselines = store.baselines()
    points: dict[str, list[DurationPoint]] = {}
    for r in store.node_results_since(since, resource_types=("model",)):
        points.setdefault(r["node_id"], []).append(
            DurationPoint(_ts(r["finished_at"]), r["seconds"], r["status"], r["dag_id"], r["run_id"])
        )
    models = []
    node_ids = {uid for uid, node in graph.nodes.items() if node.get("resource_type") == "model"} | set(points)
    for uid in node_ids:
        recent = points.get(uid, [])[-MAX_POINTS:]
        baseline = baselines.get(uid)
        model = ModelDurations(
            node_id=uid, name=graph.name(uid) if uid in graph.nodes else uid.rsplit(".", 1)[-1], points=recent,
            baseline_seconds=baseline.median if baseline else None, baseline_samples=baseline.samples if baseline else 0,
            threshold_ratio=threshold, colour=GREY,
        )  # fmt: skip
        models.append(dataclasses.replace(model, colour=duration_colour(model)))
    # Slowest against their baseline first, then models with runs but no baseline yet, then the idle ones.
    return sorted(models, key=lambda m: (-(m.ratio or 0), not m.points, m.name))


def duration_colour(model: ModelDurations) -> str:
    latest = model.latest
    if latest is not None and latest.status not in ("success", "pass"):
        return RED
    ratio = model.ratio
    if ratio is None:
        return GREY
    if ratio > model.threshold_ratio:
        return RED
    return AMBER if ratio > 1 + (model.threshold_ratio - 1) / 2 else GREEN


# ---------------------------------------------------------------------------------------------- alerts
def gather_alerts(store: AlertStore, since: float) -> tuple[list[AlertRow], int]:
    records = store.alerts_since(since, limit=MAX_ALERTS + 1)
    rows = []
    for record in records[:MAX_ALERTS]:
        alert = record["alert"]
        run_url = None
        if alert.dag_id and alert.run_id:
            # Relative to /vyapar-health/: the Airflow UI's own run (or task) page, whatever host serves it.
            run_url = (
                task_log_url("..", alert.dag_id, alert.run_id, alert.task_id)
                if alert.task_id
                else run_url_of(alert.dag_id, alert.run_id)
            )
        rows.append(
            AlertRow(
                id=record["id"], created_at=_ts(record["created_at"]), kind=record["kind"], severity=record["severity"],
                status=record["status"], subject=record["subject"], incident_key=record["incident_key"],
                incident_status=record["incident_status"], dag_id=alert.dag_id, run_id=alert.run_id,
                task_id=alert.task_id, run_url=run_url, note=record["note"] or "",
                deliveries=[
                    Delivery(d["channel"], d["destination"], d["status"], d["attempts"], d["last_error"])
                    for d in record["deliveries"]
                ],
            )
        )  # fmt: skip
    total = len(records) if len(records) <= MAX_ALERTS else store.count_alerts_since(since)
    return rows, total


def gather_outbox(store: AlertStore) -> Outbox:
    summary = store.outbox_summary()
    last = summary["last_error"] or {}
    return Outbox(
        backlog=summary["backlog"], dead=summary["dead"], counts=summary["counts"],
        oldest_pending_at=_ts(summary["oldest_pending_at"]), last_error=last.get("last_error"),
        last_error_channel=last.get("channel"), last_error_status=last.get("status"),
        last_error_at=_ts(last.get("leased_at") or last.get("created_at")),
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------- Airflow runs
def gather_runs(since: datetime) -> list[DagRunRow]:
    """The latest run of every vyapar_* DAG, from Airflow's metadata database (inside the API server)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    latest = (
        select(func.max(DagRun.id).label("id"))
        .where(DagRun.dag_id.like("vyapar\\_%", escape="\\"))
        .group_by(DagRun.dag_id)
        .subquery()
    )
    query = select(
        DagRun.dag_id, DagRun.run_id, DagRun.state, DagRun.run_type, DagRun.start_date, DagRun.end_date
    ).where(DagRun.id.in_(select(latest.c.id)))
    with create_session() as session:
        rows = session.execute(query).all()
    runs = [
        DagRunRow(
            dag_id=r.dag_id, run_id=r.run_id, state=str(r.state), run_type=str(r.run_type),
            start_date=r.start_date, end_date=r.end_date,
            run_url=run_url_of(r.dag_id, r.run_id),
        )
        for r in rows
    ]  # fmt: skip
    return sorted(runs, key=lambda r: r.dag_id)


# ---------------------------------------------------------------------------------------------- all of it
def collect(
    store: AlertStore | None = None, now: datetime | None = None, days: int = WINDOW_DAYS, with_runs: bool = True
) -> Snapshot:
    now = now or datetime.now(UTC)
    since = now - timedelta(days=days)
    snapshot = Snapshot(generated_at=now, window_days=days)
    try:
        store = store or get_store()
    except Exception as exc:  # noqa: BLE001 — the page says what is wrong instead of failing
        log.exception("health view: alert store unavailable")
        for panel in ("models", "alerts", "outbox"):
            snapshot.errors[panel] = f"alert store unavailable: {type(exc).__name__}: {exc}"
        store = None
    panels: list[tuple[str, Any]] = [("freshness", lambda: gather_freshness(now))]
    if store is not None:
        panels += [
            ("models", lambda: gather_models(store, since.timestamp())),
            ("alerts", lambda: gather_alerts(store, since.timestamp())),
            ("outbox", lambda: gather_outbox(store)),
        ]
    if with_runs:
        panels.append(("runs", lambda: gather_runs(since)))
    for name, gather in panels:
        started = time.perf_counter()
        try:
            value = gather()
        except Exception as exc:  # noqa: BLE001
            log.exception("health view: %s panel failed", name)
            snapshot.errors[name] = f"{type(exc).__name__}: {exc}"
            continue
        finally:
            snapshot.timings[name] = time.perf_counter() - started
        if name == "alerts":
            snapshot.alerts, snapshot.alerts_total = value
        else:
            setattr(snapshot, name, value)
    return snapshot
