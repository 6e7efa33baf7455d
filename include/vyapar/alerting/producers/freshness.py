"""The freshness watcher: each source's latest landing and each mart's latest successful build, against the limit.

Sources: age of the table's latest batch in the extractor's ledger (`<landing>/_batches`), the same signal dbt
source freshness reads — no warehouse access. Marts: built daily, so "more than 2 hours stale" means the build
its schedule expected did not succeed within 2 hours: stale when the latest scheduled build time of any DAG
that builds the mart is over the limit ago and no successful build (the alert store's node results) followed it.
One alert per breach (incident dedup), a recovery when fresh again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import duckdb
import pendulum
from croniter import croniter

from include.vyapar import settings
from include.vyapar.alerting import lineage
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import get_config
from include.vyapar.alerting.incidents import raise_alert, resolve
from include.vyapar.alerting.store import get_store
from include.vyapar.pipeline.schedules import PipelineSchedule, load_schedules

log = logging.getLogger(__name__)
SOURCE_NAME = "vyaparbazaar_raw"


@dataclass(frozen=True)
class Freshness:
    node_id: str
    name: str
    kind: str  # "source" or "mart"
    last_at: datetime | None  # latest landing / successful build (UTC)
    expected_at: datetime | None  # marts: the latest scheduled build time
    limit: timedelta
    now: datetime

    @property
    def age(self) -> timedelta | None:
        return None if self.last_at is None else self.now - self.last_at

    @property
    def state(self) -> str:
        if self.kind == "source":
            if self.last_at is None:
                return "unknown"
            return "stale" if self.age > self.limit else "fresh"
        if self.expected_at is None or self.now - self.expected_at <= self.limit:
            return "fresh" if self.last_at else "unknown"
        if self.last_at is None:
            return "unknown"  # never built under Airflow yet: nothing to compare
        return "stale" if self.last_at < self.expected_at else "fresh"

    @property
    def ratio(self) -> float | None:
        """Age as a share of the limit: <1 green, 1–1.5 amber, above red (the health view's colours)."""
        return None if self.age is None else self.age / self.limit


def source_landings(landing_dir=None) -> dict[str, datetime]:
    """Latest landing per raw table, from the ledger (naive UTC in the files)."""
    ledger = (landing_dir or settings.LANDING_DIR) / "_batches" / "*.parquet"
    try:
        rows = duckdb.connect().execute(
            f"select table_name, max(_loaded_at) from read_parquet('{ledger}') group by 1"
        ).fetchall()
    except duckdb.IOException:
        return {}
    return {table: at.replace(tzinfo=UTC) for table, at in rows}


def _models_built_by(schedule: PipelineSchedule, graph: lineage.Manifest) -> set[str]:
    built = set()
    for selector in schedule.select:
        for uid, node in graph.nodes.items():
            if node.get("resource_type") != "model":
                continue
            path = node.get("original_file_path", "")
            if (selector.startswith("path:") and path.startswith(selector.removeprefix("path:").rstrip("/") + "/")) or (
                selector == node.get("name")
            ):
                built.add(uid)
    return built


def expected_builds(now: datetime) -> dict[str, datetime]:
    """Per mart: the latest time (<= now) a DAG that builds it was scheduled to run."""
    graph = lineage.manifest()
    expected: dict[str, datetime] = {}
    for schedule in load_schedules().all:
        local_now = pendulum.instance(now).in_tz(schedule.timezone)
        fired = croniter(schedule.cron, local_now).get_prev(pendulum.DateTime)
        fired = pendulum.instance(fired).in_tz("UTC")
        for uid in _models_built_by(schedule, graph):
            if "/marts/" in "/" + graph.node(uid).get("original_file_path", ""):
                expected[uid] = max(expected.get(uid, fired), fired)
    return expected


def check(now: datetime | None = None) -> list[Freshness]:
    now = now or datetime.now(UTC)
    limit = timedelta(minutes=get_config().alerts.stale_data.max_age_minutes)
    graph, store = lineage.manifest(), get_store()
    statuses = []
    landings = source_landings()
    for uid, node in sorted(graph.nodes.items()):
        if node.get("resource_type") == "source" and node.get("source_name") == SOURCE_NAME:
            statuses.append(Freshness(uid, node["name"], "source", landings.get(node["name"]), None, limit, now))
    for uid, expected in sorted(expected_builds(now).items()):
        last = store.last_success(uid)
        last_at = datetime.fromtimestamp(last, UTC) if last else None
        statuses.append(Freshness(uid, graph.name(uid), "mart", last_at, expected, limit, now))
    return statuses


def _stale_alert(f: Freshness) -> Alert:
    graph = lineage.manifest()
    limit_h = f.limit.total_seconds() / 3600
    if f.kind == "source":
        subject = f"Raw table {f.name} has not landed for {_hours(f.age)} (limit {limit_h:g} h)"
        summary = "No batch of this table has arrived from the extractor within the freshness limit."
        facts = {"Source": f"{SOURCE_NAME}.{f.name}", "Last landing": f"{f.last_at:%Y-%m-%d %H:%M} UTC",
                 "Age": _hours(f.age), "Limit": f"{limit_h:g} h"}  # fmt: skip
    else:
        subject = f"Mart {f.name} is stale: no successful build since {f.last_at:%Y-%m-%d %H:%M} UTC"
        summary = (f"The build scheduled for {f.expected_at:%Y-%m-%d %H:%M} UTC has not succeeded within "
                   f"{limit_h:g} h; dashboards read yesterday's numbers.")  # fmt: skip
        facts = {"dbt model": f.node_id, "Last successful build": f"{f.last_at:%Y-%m-%d %H:%M} UTC",
                 "Scheduled build": f"{f.expected_at:%Y-%m-%d %H:%M} UTC", "Age": _hours(f.age),
                 "Limit": f"{limit_h:g} h after the scheduled build"}  # fmt: skip
    return Alert(
        kind="stale_data", subject=subject, summary=summary, facts=facts, node_id=f.node_id,
        owner=graph.owner_of(f.node_id), dedup_key=f"stale_data:{f.node_id}", dag_id="vyapar_freshness_watch",
    )  # fmt: skip


def _hours(delta: timedelta | None) -> str:
    return "never" if delta is None else f"{delta.total_seconds() / 3600:.1f} h"


def _feed_alert(stale: list[Freshness]) -> Alert:
    oldest = max(stale, key=lambda f: f.age)
    limit_h = oldest.limit.total_seconds() / 3600
    return Alert(
        kind="stale_data",
        subject=f"Raw feed {SOURCE_NAME} stopped: {len(stale)} tables have not landed for up to {_hours(oldest.age)} "
        f"(limit {limit_h:g} h)",
        summary="Several raw tables went stale together: the extractor (or the sources DAG) stopped, not one table.",
        facts={"Source": SOURCE_NAME, "Stale tables": ", ".join(sorted(f.name for f in stale)),
               "Oldest landing": f"{oldest.last_at:%Y-%m-%d %H:%M} UTC", "Limit": f"{limit_h:g} h"},  # fmt: skip
        affected=[f.node_id for f in stale],
        dedup_key=lineage.feed_key(SOURCE_NAME),
        dag_id="vyapar_freshness_watch",
    )


def watch(now: datetime | None = None) -> list[Freshness]:
    """Check everything; one alert per breach (a feed stopping altogether is one), recoveries when fresh again."""
    statuses = check(now)
    graph = lineage.manifest()
    stale_sources = [f for f in statuses if f.kind == "source" and f.state == "stale"]
    if len(stale_sources) >= 2:
        raise_alert(_feed_alert(stale_sources))  # the per-table alerts below fold into it
    elif not stale_sources:
        resolve(lineage.feed_key(SOURCE_NAME), f"Raw feed {SOURCE_NAME} is landing again", dag_id="vyapar_freshness_watch")
    for f in statuses:
        if f.state == "stale":
            # The feed alert already lists its stale tables: no "also affected" follow-up for them.
            raise_alert(_stale_alert(f), graph.upstream_keys(f.node_id), share_fold=f.kind != "source")
        elif f.state == "fresh":
            resolve(f"stale_data:{f.node_id}", f"{f.name} is fresh again (age {_hours(f.age)})", node_id=f.node_id)
        log.info("freshness %-7s %-5s %-40s age %s", f.state, f.kind, f.name, _hours(f.age))
    return statuses
