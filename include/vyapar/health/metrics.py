"""The platform's metrics in Prometheus' text format (plugins/vyapar_metrics_plugin.py), read at scrape time from
where the health view and the watchers read them: freshness, model durations, run outcomes, the outbox, resources.
Only a caller with the bearer token or from an allowed network (settings.METRICS_TOKEN, METRICS_ALLOW_FROM) gets them.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psutil
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from include.vyapar import settings

log = logging.getLogger(__name__)
URL_PREFIX = "/vyapar-metrics"
METRICS_ROUTE = "/metrics"
MODEL_WINDOW = timedelta(days=7)  # a model's "last duration" is its latest result within this window


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def freshness_metrics(now: datetime) -> Iterator[Metric]:
    from include.vyapar.alerting.producers import freshness

    age = _gauge("vyapar_freshness_age_seconds", "Age of a source's latest landing or a mart's latest successful build.",
                 ["kind", "name", "node_id"])  # fmt: skip
    limit = _gauge("vyapar_freshness_limit_seconds", "The freshness limit the stale_data alert judges against.",
                   ["kind", "name", "node_id"])  # fmt: skip
    stale = _gauge("vyapar_freshness_stale", "1 when the freshness watcher judges it stale, 0 when fresh.",
                   ["kind", "name", "node_id"])  # fmt: skip
    for f in freshness.check(now):
        labels = [f.kind, f.name, f.node_id]
        limit.add_metric(labels, f.limit.total_seconds())
        if f.age is not None:
            age.add_metric(labels, f.age.total_seconds())
        if f.state in ("fresh", "stale"):
            stale.add_metric(labels, float(f.state == "stale"))
    yield from (age, limit, stale)


def model_metrics(now: datetime) -> Iterator[Metric]:
    from include.vyapar.alerting import lineage
    from include.vyapar.alerting.store import get_store

    store, graph = get_store(), lineage.manifest()
    last = _gauge("vyapar_model_last_duration_seconds", "dbt's execution time of a model's latest build.",
                  ["model", "node_id", "status"])  # fmt: skip
    baseline = _gauge("vyapar_model_baseline_seconds", "A model's baseline: the median of its recent successful builds "
                      "(the slow alert's reference).", ["model", "node_id"])  # fmt: skip
    latest: dict[str, dict] = {}
    for r in store.node_results_since((now - MODEL_WINDOW).timestamp(), resource_types=("model",)):
        latest[r["node_id"]] = r  # oldest first: the last one wins
    for node_id, r in sorted(latest.items()):
        last.add_metric([graph.name(node_id), node_id, r["status"]], r["seconds"])
    for node_id, b in sorted(store.baselines().items()):
        baseline.add_metric([graph.name(node_id), node_id], b.median)
    yield from (last, baseline)


def run_metrics(now: datetime) -> Iterator[Metric]:
    """Run outcomes per DAG from Airflow's metadata database (the API server may read it)."""
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    ours = DagRun.dag_id.like("vyapar\\_%", escape="\\")
    counts = sa.select(DagRun.dag_id, DagRun.state, sa.func.count()).where(ours).group_by(DagRun.dag_id, DagRun.state)
    newest = sa.select(sa.func.max(DagRun.id)).where(ours, DagRun.state.in_(("success", "failed"))).group_by(DagRun.dag_id)
    last_query = sa.select(DagRun.dag_id, DagRun.state, DagRun.end_date).where(DagRun.id.in_(newest))
    with create_session() as session:
        rows, last_rows = session.execute(counts).all(), session.execute(last_query).all()
    runs = CounterMetricFamily("vyapar_dag_runs", "DAG runs by their state (Airflow's metadata database).",
                               labels=["dag_id", "state"])  # fmt: skip
    for dag_id, state, count in sorted(rows, key=lambda r: (r[0], str(r[1]))):
        runs.add_metric([dag_id, str(state)], count)
    success = _gauge("vyapar_dag_last_run_success", "1 when a DAG's latest finished run succeeded, 0 when it failed.",
                     ["dag_id"])  # fmt: skip
    ended = _gauge("vyapar_dag_last_run_end_timestamp_seconds", "When a DAG's latest finished run ended.", ["dag_id"])
    for dag_id, state, end in sorted(last_rows):
        success.add_metric([dag_id], float(str(state) == "success"))
        if end is not None:
            ended.add_metric([dag_id], (end if end.tzinfo else end.replace(tzinfo=UTC)).timestamp())
    yield from (runs, success, ended)


def outbox_metrics(now: datetime) -> Iterator[Metric]:
    from include.vyapar.alerting.store import get_store

    summary = get_store().outbox_summary()
    yield GaugeMetricFamily("vyapar_alert_outbox_pending", "Deliveries waiting to be sent (pending or in flight).",
                            value=summary["backlog"])  # fmt: skip
    yield GaugeMetricFamily("vyapar_alert_outbox_dead_lettered", "Deliveries given up after their last attempt.",
                            value=summary["dead"])  # fmt: skip
    oldest = summary["oldest_pending_at"]
    yield GaugeMetricFamily("vyapar_alert_outbox_oldest_pending_age_seconds",
                            "Age of the oldest delivery still waiting (0 when none waits).",
                            value=0.0 if oldest is None else max(0.0, now.timestamp() - oldest))  # fmt: skip


def resource_metrics(now: datetime) -> Iterator[Metric]:
    """What the resources alert judges, sampled here as the task watchdog samples it: memory, the warehouse
    volume's disk, CPU (since the previous scrape), against the alert's threshold."""
    from include.vyapar.alerting.config import get_config
    from include.vyapar.alerting.producers.watchdog import _existing

    resources = get_config().alerts.resources
    host = socket.gethostname()
    used = _gauge("vyapar_resource_used_percent", "Memory, warehouse disk and CPU in use on the host serving this.",
                  ["metric", "host"])  # fmt: skip
    if "memory" in resources.metrics:
        used.add_metric(["memory", host], psutil.virtual_memory().percent)
    if "disk" in resources.metrics:
        volume = _existing(settings.DUCKDB_PATH.parent)  # the warehouse's folder may not exist yet
        used.add_metric(["disk", host], psutil.disk_usage(str(volume)).percent)
    if "cpu" in resources.metrics:
        used.add_metric(["cpu", host], psutil.cpu_percent(interval=None))
    yield used
    yield GaugeMetricFamily("vyapar_resource_threshold_percent", "The resources alert's threshold.",
                            value=resources.threshold_percent)  # fmt: skip


SECTIONS: dict[str, Callable[[datetime], Iterator[Metric]]] = {
    "freshness": freshness_metrics, "models": model_metrics, "runs": run_metrics, "outbox": outbox_metrics,
    "resources": resource_metrics,
}  # fmt: skip


class PlatformCollector(Collector):
    """Everything above, read afresh at each scrape; a section that fails is reported as down, not as an error."""

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        up = _gauge("vyapar_metrics_section_up", "1 when a section of these metrics could be read.", ["section"])
        took = _gauge("vyapar_metrics_section_seconds", "Time to read a section.", ["section"])
        for name, section in SECTIONS.items():
            started = time.perf_counter()
            try:
                metrics = list(section(now))
            except Exception:  # noqa: BLE001 — one unreadable source must not hide the others
                log.exception("metrics section %s failed", name)
                up.add_metric([name], 0.0)
            else:
                up.add_metric([name], 1.0)
                yield from metrics
            took.add_metric([name], time.perf_counter() - started)
        yield from (up, took)


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(cidr.strip(), strict=False) for cidr in settings.METRICS_ALLOW_FROM.split(",")
            if cidr.strip()]  # fmt: skip


def authorized(request: Request) -> bool:
    """The bearer token (compared in constant time), or a client address in an allowed network. Nothing else: with
    neither configured the endpoint answers nobody."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if settings.METRICS_TOKEN and scheme.lower() == "bearer":
        if hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode()):
            return True
    client = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in _allowed_networks())


def create_app() -> FastAPI:
    app = FastAPI(title="VyaparBazaar metrics", docs_url=None, redoc_url=None, openapi_url=None)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector())
    psutil.cpu_percent(interval=None)  # primes the CPU counter: each scrape measures since the previous one

    @app.get(METRICS_ROUTE)
    async def metrics(request: Request) -> Response:
        if not authorized(request):
            return PlainTextResponse("forbidden: a bearer token or an allowed network is required\n", status_code=403)
        body = await asyncio.to_thread(generate_latest, registry)
        # The classic text format (0.0.4): what every Prometheus reads, 2.x included.
        return Response(body, headers={"content-type": CONTENT_TYPE_PLAIN_0_0_4})

    return app
