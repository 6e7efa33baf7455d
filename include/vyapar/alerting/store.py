"""The durable alert store (SQLAlchemy Core; SQLite by default, PostgreSQL under compose; never the DuckDB file).

Holds alerts, incidents (dedup, folding, Slack threads), the delivery outbox, and the dbt duration baselines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import statistics
import time
import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from include.vyapar import settings
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import RECOVERED, AlertingConfig, get_config
from include.vyapar.alerting.formatting import redacted
from include.vyapar.alerting.redaction import redact
from include.vyapar.alerting.router import destination_for, route_for, silence_for

log = logging.getLogger(__name__)

# Alert statuses. An incident is open or resolved.
OPEN, RESOLVED, SILENCED, FOLDED = "open", "resolved", "silenced", "folded"
REPEAT, RECOVERY, DROPPED = "repeat", "recovery", "dropped"
# Delivery statuses (pending -> sending, leased -> sent | dead) and purposes.
PENDING, SENDING, SENT, DEAD = "pending", "sending", "sent", "dead"
FOR_ALERT, DEAD_LETTER = "alert", "dead_letter"
# A threaded Slack update under an incident's root message ("also affected: ..."), and its alert status.
FOLLOW_UP = "follow_up"
NOTICE = "notice"  # an alert status: delivered without an incident (the digest)
DIRECT = "direct"  # what `raise_alert` returns when the store could not take the alert and it was sent directly


class AlertStoreGone(RuntimeError):
    """The SQLite store file this process opened was deleted or replaced: what it wrote, nobody else would read."""


def run_key(run_id: str | None) -> str | None:
    """How a run id is kept in the tables that look runs up (task alerts, durations, slow-alerted, node results).

    A run id is whatever the triggering user typed. One with nothing secret-shaped in it (scheduled__..., manual__...)
    is kept as it is. Otherwise: its redacted text, readable, and a digest of the original, so two runs that differ
    only in the masked part stay apart; the digest is deliberately slow (PBKDF2) so that a short password cannot be
    found from it by trying candidates.
    """
    if run_id is None:
        return None
    shown = redact(run_id)
    return run_id if shown == run_id else f"{shown} #{_slow_digest(run_id)}"


@functools.lru_cache(maxsize=256)
def _slow_digest(text: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", text.encode(), b"vyapar alert store run id", 100_000)[:8].hex()


@dataclass(frozen=True)
class EnqueueResult:
    """What `enqueue` did: status is open | repeat | folded | silenced | recovery | dropped."""

    alert_id: int
    status: str
    incident_id: int | None
    delivery_ids: tuple[int, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Baseline:
    median: float
    samples: int


@dataclass(frozen=True)
class ClaimedDelivery:
    """One outbox row leased to this flusher (`token` proves the lease)."""

    id: int
    alert_id: int
    incident_id: int | None
    channel: str
    destination: str
    purpose: str
    note: str
    attempts: int
    token: str
    leased_at: float
    # When an earlier attempt may have posted this message without recording it (a deliverer died holding the
    # lease, or a send timed out): the time to search Slack from before posting again. None: never attempted blind.
    unconfirmed_since: float | None
    alert: Alert


def _tables(metadata: sa.MetaData, prefix: str) -> dict[str, sa.Table]:
    epoch = sa.Float(precision=53)  # seconds since the epoch: compares the same on every backend
    alerts = sa.Table(
        f"{prefix}alerts", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(512), nullable=False),
        sa.Column("incident_id", sa.Integer, nullable=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, default=""),
        sa.Column("created_at", epoch, nullable=False),
        sa.Index(f"{prefix}ix_alerts_dedup_key", "dedup_key"),
    )  # fmt: skip
    incidents = sa.Table(
        f"{prefix}incidents", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dedup_key", sa.String(512), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(32), nullable=False),
        sa.Column("root_alert_id", sa.Integer, nullable=False),
        sa.Column("affected", sa.Text, nullable=False, default="[]"),
        sa.Column("repeat_count", sa.Integer, nullable=False, default=0),
        sa.Column("slack_threads", sa.Text, nullable=False, default="{}"),
        sa.Column("opened_at", epoch, nullable=False),
        sa.Column("last_seen_at", epoch, nullable=False),
        sa.Column("resolved_at", epoch, nullable=True),
    )  # fmt: skip
    # At most one open incident per key, even with several processes enqueueing at once.
    sa.Index(
        f"{prefix}ux_incidents_open_key", incidents.c.dedup_key, unique=True,
        sqlite_where=incidents.c.status == OPEN, postgresql_where=incidents.c.status == OPEN,
    )  # fmt: skip
    deliveries = sa.Table(
        f"{prefix}deliveries", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer, nullable=False),
        sa.Column("incident_id", sa.Integer, nullable=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("destination", sa.Text, nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False, default=FOR_ALERT),
        sa.Column("note", sa.Text, nullable=False, default=""),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt_at", epoch, nullable=False),
        sa.Column("lease_token", sa.String(64), nullable=True),
        sa.Column("leased_at", epoch, nullable=True),
        sa.Column("lease_until", epoch, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("provider_id", sa.String(128), nullable=True),
        sa.Column("provider_channel", sa.String(128), nullable=True),
        sa.Column("created_at", epoch, nullable=False),
        sa.Column("sent_at", epoch, nullable=True),
        sa.Column("unconfirmed_since", epoch, nullable=True),  # see ClaimedDelivery
        sa.Index(f"{prefix}ix_deliveries_due", "status", "next_attempt_at"),
    )  # fmt: skip
    durations = sa.Table(
        f"{prefix}node_durations", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(512), nullable=False),
        sa.Column("run_id", sa.String(512), nullable=False),
        sa.Column("seconds", epoch, nullable=False),
        sa.Column("recorded_at", epoch, nullable=False),
        sa.UniqueConstraint("node_id", "run_id", name=f"{prefix}uq_node_durations_run"),
    )  # fmt: skip
    slow_alerted = sa.Table(
        f"{prefix}slow_alerted", metadata,
        sa.Column("run_id", sa.String(512), primary_key=True),
        sa.Column("node_id", sa.String(512), primary_key=True),
        sa.Column("alerted_at", epoch, nullable=False),
    )  # fmt: skip
    # Every dbt node result (each try): the freshness watcher's "last successful build", the digest's pass rates.
    node_results = sa.Table(
        f"{prefix}node_results", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.String(512), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("seconds", epoch, nullable=False),
        sa.Column("failures", sa.Integer, nullable=True),
        sa.Column("dag_id", sa.String(250), nullable=True),
        sa.Column("run_id", sa.String(512), nullable=True),
        sa.Column("task_id", sa.String(250), nullable=True),
        sa.Column("try_number", sa.Integer, nullable=True),
        sa.Column("finished_at", epoch, nullable=False),
        sa.Index(f"{prefix}ix_node_results_node", "node_id", "finished_at"),
    )  # fmt: skip
    # Which incident each failed task's alert went to: the DAG-level failure alert folds into them.
    task_alerts = sa.Table(
        f"{prefix}task_alerts", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dag_id", sa.String(250), nullable=False),
        sa.Column("run_id", sa.String(512), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("dedup_key", sa.String(512), nullable=False),
        sa.Column("incident_key", sa.String(512), nullable=True),
        sa.Column("recorded_at", epoch, nullable=False),
        sa.Index(f"{prefix}ix_task_alerts_run", "dag_id", "run_id"),
    )  # fmt: skip
    return dict(
        alerts=alerts, incidents=incidents, deliveries=deliveries, durations=durations, slow_alerted=slow_alerted,
        node_results=node_results, task_alerts=task_alerts,
    )  # fmt: skip


# Every engine of this process: a forked child (the executor forks task processes from the scheduler, where the
# sweeper's store is open) must never use its parent's pooled connections: two processes on one socket desync the
# protocol and a query waits forever (SQLAlchemy: "Using Connection Pools with Multiprocessing or os.fork()").
_ENGINES: weakref.WeakSet[sa.Engine] = weakref.WeakSet()


def _forget_parent_connections() -> None:
    for engine in list(_ENGINES):
        engine.dispose(close=False)  # the parent keeps its connections; the child opens its own


os.register_at_fork(after_in_child=_forget_parent_connections)


def _make_engine(url: str) -> sa.Engine:
    engine = _new_engine(url)
    _ENGINES.add(engine)
    return engine


def _new_engine(url: str) -> sa.Engine:
    if "duckdb" in url.split(":", 1)[0] or str(settings.DUCKDB_PATH) in url:
        raise ValueError("the alert store must never live in the DuckDB warehouse (a single-writer file)")
    if not url.startswith("sqlite"):
        return sa.create_engine(url, pool_pre_ping=True)
    database = sa.make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _sqlite_for_many_writers(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None  # let SQLAlchemy's BEGIN below be the only transaction start
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; task processes + scheduler
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _take_the_write_lock_up_front(connection):  # noqa: ANN001
        # IMMEDIATE: a read-then-write transaction never fails halfway with "database is locked".
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite"):
        return None
    database = sa.make_url(url).database
    return Path(database) if database and database != ":memory:" and not database.startswith("file:") else None


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def enriched(alert: Alert, config: AlertingConfig) -> Alert:
    """The alert as it is stored and sent: secrets redacted, severity and runbook link filled in from the config."""
    alert = redacted(alert)
    changes: dict[str, Any] = {}
    if not alert.severity and alert.kind != RECOVERED:
        changes["severity"] = config.severity_of(alert.kind)
    if alert.kind != RECOVERED and "Runbook" not in alert.links:
        changes["links"] = {**alert.links, "Runbook": config.runbook_url(alert.kind)}
    if alert.severity and alert.severity not in config.severities:
        raise ValueError(f"unknown severity {alert.severity!r} (declared: {', '.join(config.severities)})")
    return alert.replace(**changes) if changes else alert


class AlertStore:
    """All durable alerting state. One instance per process is enough (`get_store()`)."""

    def __init__(self, url: str | None = None, *, config: AlertingConfig | None = None, table_prefix: str = "") -> None:
        self.url = url or settings.alert_store_url()
        self._config = config
        self._file = _sqlite_file(self.url)
        self._identity: tuple[int, int] | None = None
        self.metadata = sa.MetaData()
        tables = _tables(self.metadata, table_prefix)
        self.alerts, self.incidents, self.deliveries = tables["alerts"], tables["incidents"], tables["deliveries"]
        self.durations, self.slow_alerted = tables["durations"], tables["slow_alerted"]
        self.node_results, self.task_alerts = tables["node_results"], tables["task_alerts"]
        self._open()

    def _open(self) -> None:
        self._engine = _make_engine(self.url)
        self.metadata.create_all(self._engine)
        self._add_missing_columns()
        if self._file is not None:
            self._identity = _file_identity(self._file)

    @property
    def engine(self) -> sa.Engine:
        """The store's engine. For a SQLite file, first checks (one stat) that the file is still the one opened:
        if it was deleted or replaced, raises AlertStoreGone once, and the next use opens the file at the path, as a
        new process would (so this process and the others use the same store again)."""
        if self._file is not None and self._identity is not None and _file_identity(self._file) != self._identity:
            gone = self._identity
            self._engine.dispose()
            self._identity = None
            try:
                self._open()
            except Exception:  # noqa: BLE001 — the next use tries again
                log.exception("could not reopen the alert store at %s", self._file)
            raise AlertStoreGone(
                f"the alert store {self._file} was deleted or replaced under this process (it had opened "
                f"inode {gone[1]}); its alerts and incidents are gone: reopened it empty"
            )
        return self._engine

    def _add_missing_columns(self) -> None:
        """Columns added after a store was created (create_all makes tables, never columns): all nullable."""
        present = {c["name"] for c in sa.inspect(self.engine).get_columns(self.deliveries.name)}
        with self.engine.begin() as conn:
            for column in self.deliveries.columns:
                if column.name not in present:
                    kind = column.type.compile(dialect=self.engine.dialect)
                    conn.exec_driver_sql(f'ALTER TABLE {self.deliveries.name} ADD COLUMN "{column.name}" {kind}')

    @property
    def config(self) -> AlertingConfig:
        return self._config or get_config()

    def drop_all(self) -> None:
        self.metadata.drop_all(self.engine)
        self._engine.dispose()

    # ------------------------------------------------------------------ enqueue
    def enqueue(self, alert: Alert, upstream_keys: Iterable[str] = (), *, now: datetime | None = None) -> EnqueueResult:
        """Record an alert and its deliveries in one transaction (see the package docstring for the rules)."""
        now = now or datetime.now(UTC)
        alert = enriched(alert, self.config)
        upstream_keys = [key for key in upstream_keys if key and key != alert.dedup_key]
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    return self._enqueue(conn, alert, upstream_keys, now)
            except IntegrityError:
                # Another process opened the same incident between our check and insert: now it is a repeat.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


    def _enqueue(self, conn: sa.Connection, alert: Alert, upstream_keys: list[str], now: datetime) -> EnqueueResult:
        ts = now.timestamp()
        silenced = silence_for(alert, now, self.config)

        if alert.is_recovery:
            incident = self._open_incident(conn, alert.recovery_of)
            if incident is None:
                alert_id = self._insert_alert(
                    conn, alert.replace(severity=alert.severity or "low"), DROPPED, None, ts, "no open incident"
                )
                log.info("recovery of %s dropped: no open incident", alert.recovery_of)
                return EnqueueResult(alert_id, DROPPED, None, reason="no open incident")
            recovery = alert.replace(severity=incident.severity, dedup_key=incident.dedup_key)
            conn.execute(
                sa.update(self.incidents)
                .where(self.incidents.c.id == incident.id)
                .values(status=RESOLVED, resolved_at=ts)
            )
            conn.execute(
                sa.update(self.alerts).where(self.alerts.c.id == incident.root_alert_id).values(status=RESOLVED)
            )
            if silenced:
                alert_id = self._insert_alert(conn, recovery, SILENCED, incident.id, ts, f"silenced by {silenced}")
                log.info(
                    "alert %s (%s) resolved incident %s silently: silenced by %s",
                    alert_id,
                    alert.subject,
                    incident.dedup_key,
                    silenced,
                )
                return EnqueueResult(alert_id, SILENCED, incident.id, reason=silenced)
            alert_id = self._insert_alert(conn, recovery, RECOVERY, incident.id, ts)
            targets = conn.execute(
                sa.select(self.deliveries.c.channel, self.deliveries.c.destination)
                .where(self.deliveries.c.alert_id == incident.root_alert_id, self.deliveries.c.purpose == FOR_ALERT)
                .order_by(self.deliveries.c.id)
            ).all()
            ids = self._insert_deliveries(
                conn, alert_id, incident.id, [(t.channel, t.destination) for t in targets], ts
            )
            return EnqueueResult(alert_id, RECOVERY, incident.id, ids)

        if silenced:
            alert_id = self._insert_alert(conn, alert, SILENCED, None, ts, f"silenced by {silenced}")
            log.info("alert %s (%s, %s) not delivered: silenced by %s", alert_id, alert.kind, alert.subject, silenced)
            return EnqueueResult(alert_id, SILENCED, None, reason=silenced)

        incident = self._open_incident(conn, alert.dedup_key)
        if incident is not None:
            alert_id = self._insert_alert(conn, alert, REPEAT, incident.id, ts)
            conn.execute(
                sa.update(self.incidents).where(self.incidents.c.id == incident.id)
                .values(repeat_count=self.incidents.c.repeat_count + 1, last_seen_at=ts)
            )  # fmt: skip
            return EnqueueResult(alert_id, REPEAT, incident.id, reason=f"incident {alert.dedup_key} is open")

        if upstream_keys:
            upstream = conn.execute(
                sa.select(self.incidents).where(self.incidents.c.status == OPEN, self.incidents.c.dedup_key.in_(upstream_keys))
                .order_by(self.incidents.c.id).limit(1)
            ).first()  # fmt: skip
            if upstream is not None:
                affected = json.loads(upstream.affected)
                if alert.display_name not in affected:
                    affected.append(alert.display_name)
                conn.execute(
                    sa.update(self.incidents).where(self.incidents.c.id == upstream.id)
                    .values(affected=json.dumps(affected), last_seen_at=ts)
                )  # fmt: skip
                alert_id = self._insert_alert(conn, alert, FOLDED, upstream.id, ts, f"folded into {upstream.dedup_key}")
                return EnqueueResult(alert_id, FOLDED, upstream.id, reason=f"folded into {upstream.dedup_key}")

        alert_id = self._insert_alert(conn, alert, OPEN, None, ts)
        incident_id = conn.execute(
            sa.insert(self.incidents).values(
                dedup_key=alert.dedup_key, status=OPEN, kind=alert.kind, severity=alert.severity, root_alert_id=alert_id,
                affected=json.dumps(list(alert.affected)), repeat_count=0, slack_threads="{}", opened_at=ts, last_seen_at=ts,
            )
        ).inserted_primary_key[0]  # fmt: skip
        conn.execute(sa.update(self.alerts).where(self.alerts.c.id == alert_id).values(incident_id=incident_id))
        targets = [
            (channel, destination_for(channel, alert.severity, self.config))
            for channel in route_for(alert.severity, self.config)
        ]
        ids = self._insert_deliveries(conn, alert_id, incident_id, targets, ts)
        return EnqueueResult(alert_id, OPEN, incident_id, ids)

    def enqueue_notice(
        self, alert: Alert, *, now: datetime | None = None, channels: Sequence[str] | None = None
    ) -> EnqueueResult:
        """Deliver a notice (the daily digest): routed by severity like an alert, but it opens no incident.
        `channels` narrows the route (the weekly report: its full text by email, its summary line to Slack)."""
        ts = (now or datetime.now(UTC)).timestamp()
        alert = enriched(alert, self.config)
        with self.engine.begin() as conn:
            alert_id = self._insert_alert(conn, alert, NOTICE, None, ts)
            routed = route_for(alert.severity, self.config)
            if channels is not None:
                routed = [c for c in channels if c in self.config.channels] or routed
            targets = [(c, destination_for(c, alert.severity, self.config)) for c in routed]
            return EnqueueResult(alert_id, NOTICE, None, self._insert_deliveries(conn, alert_id, None, targets, ts))

    def _open_incident(self, conn: sa.Connection, dedup_key: str | None) -> Any:
        return conn.execute(
            sa.select(self.incidents).where(self.incidents.c.dedup_key == dedup_key, self.incidents.c.status == OPEN)
        ).first()

    def _insert_alert(
        self, conn: sa.Connection, alert: Alert, status: str, incident_id: int | None, ts: float, note: str = ""
    ) -> int:
        return conn.execute(
            sa.insert(self.alerts).values(
                kind=alert.kind, severity=alert.severity or "", status=status, dedup_key=alert.dedup_key, incident_id=incident_id,
                subject=alert.subject, payload=alert.to_json(), note=note, created_at=ts,
            )
        ).inserted_primary_key[0]  # fmt: skip

    def _insert_deliveries(
        self, conn: sa.Connection, alert_id: int, incident_id: int | None, targets: Sequence[tuple[str, str]], ts: float,
        purpose: str = FOR_ALERT, note: str = "",
    ) -> tuple[int, ...]:  # fmt: skip
        ids = []
        for channel, destination in targets:
            ids.append(
                conn.execute(
                    sa.insert(self.deliveries).values(
                        alert_id=alert_id, incident_id=incident_id, channel=channel, destination=destination, purpose=purpose,
                        note=note, status=PENDING, attempts=0, next_attempt_at=ts, created_at=ts,
                    )
                ).inserted_primary_key[0]
            )  # fmt: skip
        return tuple(ids)

    # ------------------------------------------------------------------ the outbox
    def due_channels(self, now: float) -> set[str]:
        """The channels with a delivery due now (a flusher sets up those senders before it takes any lease)."""
        d = self.deliveries
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(d.c.channel).where(self._due(now)).distinct()).scalars())

    def next_due_at(self) -> float | None:
        """When the next pending delivery comes due, or an in-flight one's lease runs out (None: nothing waiting)."""
        d = self.deliveries
        when = sa.case((d.c.status == PENDING, d.c.next_attempt_at), else_=d.c.lease_until)
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.min(when)).where(d.c.status.in_([PENDING, SENDING]))).scalar()

    def _due(self, now: float) -> Any:
        d = self.deliveries
        return sa.or_(
            sa.and_(d.c.status == PENDING, d.c.next_attempt_at <= now),
            sa.and_(d.c.status == SENDING, d.c.lease_until < now),
        )

    def claim_due(self, now: float, limit: int, lease_seconds: float) -> list[ClaimedDelivery]:
        """Lease up to `limit` due deliveries: pending ones whose time has come, and `sending` ones whose lease ran out.

        A row taken over from an expired lease keeps, in `unconfirmed_since`, the earliest time its message may have
        been posted: through any later failure, deferral or crash, the next attempt searches Slack from there.
        """
        d = self.deliveries
        due = self._due(now)
        claimed: list[ClaimedDelivery] = []
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(d).where(due).order_by(d.c.next_attempt_at, d.c.id).limit(limit)).all()
            for row in rows:
                token = uuid.uuid4().hex
                unconfirmed = row.unconfirmed_since
                if unconfirmed is None and row.status == SENDING:
                    unconfirmed = row.leased_at
                # The WHERE repeats the due test: of two flushers racing for a row, only one updates it.
                won = conn.execute(
                    sa.update(d).where(d.c.id == row.id, due)
                    .values(status=SENDING, lease_token=token, leased_at=now, lease_until=now + lease_seconds,
                            attempts=d.c.attempts + 1, unconfirmed_since=unconfirmed)
                ).rowcount  # fmt: skip
                if won != 1:
                    continue
                payload = conn.execute(
                    sa.select(self.alerts.c.payload).where(self.alerts.c.id == row.alert_id)
                ).scalar_one()
                claimed.append(
                    ClaimedDelivery(
                        id=row.id, alert_id=row.alert_id, incident_id=row.incident_id, channel=row.channel,
                        destination=row.destination, purpose=row.purpose, note=row.note or "", attempts=row.attempts + 1,
                        token=token, leased_at=now, unconfirmed_since=unconfirmed, alert=Alert.from_json(payload),
                    )
                )  # fmt: skip
        return claimed

    def renew_lease(self, delivery: ClaimedDelivery, now: float, lease_seconds: float) -> bool:
        """Restart the lease's clock just before the send; False if the lease passed to another deliverer meanwhile
        (then this one must not send: the other one looks the message up and sends it)."""
        d = self.deliveries
        with self.engine.begin() as conn:
            return conn.execute(
                sa.update(d).where(d.c.id == delivery.id, d.c.lease_token == delivery.token, d.c.status == SENDING)
                .values(lease_until=now + lease_seconds)
            ).rowcount == 1  # fmt: skip

    def mark_sent(
        self, delivery: ClaimedDelivery, provider_id: str | None, provider_channel: str | None, now: float
    ) -> None:
        """Record a delivered message; a Slack root message's ts becomes its incident's thread in that channel."""
        d = self.deliveries
        with self.engine.begin() as conn:
            updated = conn.execute(
                sa.update(d).where(d.c.id == delivery.id, d.c.lease_token == delivery.token)
                .values(status=SENT, sent_at=now, provider_id=provider_id, provider_channel=provider_channel, last_error=None, lease_until=None,
                        unconfirmed_since=None)
            ).rowcount  # fmt: skip
            if updated != 1:
                log.warning("delivery %s was sent but its lease had passed to another flusher", delivery.id)
            if (
                delivery.channel != "slack"
                or delivery.purpose != FOR_ALERT
                or not provider_id
                or delivery.incident_id is None
            ):
                return
            incident = conn.execute(
                sa.select(self.incidents).where(self.incidents.c.id == delivery.incident_id)
            ).first()
            if incident is None or incident.root_alert_id != delivery.alert_id:
                return
            threads = json.loads(incident.slack_threads)
            threads.setdefault(delivery.destination, {"channel": provider_channel, "ts": provider_id})
            conn.execute(
                sa.update(self.incidents)
                .where(self.incidents.c.id == incident.id)
                .values(slack_threads=json.dumps(threads))
            )

    def reschedule(
        self, delivery: ClaimedDelivery, next_attempt_at: float, error: str, *, count_attempt: bool = True,
        maybe_sent_at: float | None = None,
    ) -> None:  # fmt: skip
        """Back to pending, due at `next_attempt_at`. `unconfirmed_since` survives (a crashed send stays one to look
        up); `maybe_sent_at` starts it when this attempt itself may have posted (a send that timed out)."""
        d = self.deliveries
        values: dict[str, Any] = {"status": PENDING, "next_attempt_at": next_attempt_at, "lease_until": None}
        if error:
            values["last_error"] = error[:4000]
        if not count_attempt:
            values["attempts"] = d.c.attempts - 1
        if maybe_sent_at is not None:
            values["unconfirmed_since"] = sa.func.coalesce(d.c.unconfirmed_since, maybe_sent_at)
        with self.engine.begin() as conn:
            conn.execute(sa.update(d).where(d.c.id == delivery.id, d.c.lease_token == delivery.token).values(**values))

    def mark_dead(self, delivery: ClaimedDelivery, error: str, now: float) -> int | None:
        """Dead-letter a delivery; a dead Slack message is re-queued as an email carrying the raw Slack error."""
        d = self.deliveries
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(d).where(d.c.id == delivery.id, d.c.lease_token == delivery.token)
                .values(status=DEAD, last_error=error[:4000], lease_until=None)
            )  # fmt: skip
            if delivery.channel != "slack" or delivery.alert.kind == "alerting_degraded":
                return None
            severity = delivery.alert.severity or self.config.severities[-1]
            note = f"This alert could not be delivered to Slack ({delivery.destination}): {error}"
            (email_id,) = self._insert_deliveries(
                conn, delivery.alert_id, delivery.incident_id, [("email", destination_for("email", severity, self.config))], now,
                purpose=DEAD_LETTER, note=note[:4000],
            )  # fmt: skip
            return email_id

    def slack_thread(self, incident_id: int | None, destination: str) -> tuple[dict[str, str] | None, bool]:
        """The incident's Slack thread in a channel, and whether its root message is still on its way."""
        if incident_id is None:
            return None, False
        with self.engine.connect() as conn:
            incident = conn.execute(sa.select(self.incidents).where(self.incidents.c.id == incident_id)).first()
            if incident is None:
                return None, False
            thread = json.loads(incident.slack_threads).get(destination)
            if thread:
                return thread, False
            pending = conn.execute(
                sa.select(sa.func.count()).select_from(self.deliveries).where(
                    self.deliveries.c.alert_id == incident.root_alert_id, self.deliveries.c.channel == "slack",
                    self.deliveries.c.destination == destination, self.deliveries.c.status.in_([PENDING, SENDING]),
                )
            ).scalar_one()  # fmt: skip
            return None, pending > 0

    def has_open_incident(self, dedup_key: str) -> bool:
        with self.engine.connect() as conn:
            return self._open_incident(conn, dedup_key) is not None

    # ------------------------------------------------------------------ reading (tests, health view)
    def list_alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(self.alerts).order_by(self.alerts.c.id)
        if status:
            query = query.where(self.alerts.c.status == status)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def list_deliveries(self, status: str | None = None, channel: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(self.deliveries).order_by(self.deliveries.c.id)
        if status:
            query = query.where(self.deliveries.c.status == status)
        if channel:
            query = query.where(self.deliveries.c.channel == channel)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def alerts_since(self, since: float, limit: int = 500) -> list[dict[str, Any]]:
        """Alerts created at or after `since` (epoch seconds), newest first, each with its `deliveries` (list) and
        its incident's `incident_status` / `incident_key` / `affected`, and the decoded `alert` payload."""
        a, d, i = self.alerts, self.deliveries, self.incidents
        with self.engine.connect() as conn:
            query = sa.select(a).where(a.c.created_at >= since).order_by(a.c.id.desc()).limit(limit)
            rows = [dict(row._mapping) for row in conn.execute(query)]
            ids = [row["id"] for row in rows]
            incident_ids = sorted({row["incident_id"] for row in rows if row["incident_id"] is not None})
            deliveries: dict[int, list[dict[str, Any]]] = {}
            incidents: dict[int, dict[str, Any]] = {}
            for chunk in range(0, len(ids), 500):
                query = sa.select(d).where(d.c.alert_id.in_(ids[chunk : chunk + 500])).order_by(d.c.id)
                for row in conn.execute(query):
                    deliveries.setdefault(row.alert_id, []).append(dict(row._mapping))
            for chunk in range(0, len(incident_ids), 500):
                query = sa.select(i.c.id, i.c.status, i.c.dedup_key, i.c.affected).where(
                    i.c.id.in_(incident_ids[chunk : chunk + 500])
                )
                incidents.update({row.id: dict(row._mapping) for row in conn.execute(query)})
        for row in rows:
            incident = incidents.get(row["incident_id"]) or {}
            row["deliveries"] = deliveries.get(row["id"], [])
            row["incident_status"] = incident.get("status")
            row["incident_key"] = incident.get("dedup_key")
            row["affected"] = json.loads(incident.get("affected") or "[]")
            row["alert"] = Alert.from_json(row["payload"])
        return rows

    def count_alerts_since(self, since: float) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(self.alerts).where(self.alerts.c.created_at >= since)
            ).scalar_one()

    def outbox_summary(self) -> dict[str, Any]:
        """The delivery outbox at a glance: counts per status and channel, the oldest undelivered message's
        `created_at`, and the most recent delivery error (`last_error`: the row, or None)."""
        d = self.deliveries
        with self.engine.connect() as conn:
            counts = conn.execute(
                sa.select(d.c.status, d.c.channel, sa.func.count()).group_by(d.c.status, d.c.channel)
            ).all()
            oldest = conn.execute(
                sa.select(sa.func.min(d.c.created_at)).where(d.c.status.in_([PENDING, SENDING]))
            ).scalar()
            # The row whose error was recorded last: a retried row keeps its error until it is sent.
            last = conn.execute(
                sa.select(d).where(d.c.last_error.is_not(None)).order_by(
                    sa.func.coalesce(d.c.leased_at, d.c.created_at).desc(), d.c.id.desc()
                ).limit(1)
            ).first()  # fmt: skip
        by_status: dict[str, dict[str, int]] = {}
        for status, channel, count in counts:
            by_status.setdefault(status, {})[channel] = count
        return {
            "counts": by_status,
            "backlog": sum(sum(by_status.get(s, {}).values()) for s in (PENDING, SENDING)),
            "dead": sum(by_status.get(DEAD, {}).values()),
            "oldest_pending_at": oldest,
            "last_error": dict(last._mapping) if last is not None else None,
        }

    def node_results_since(
        self, since: float, resource_types: Sequence[str] = ("model",), statuses: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """dbt node results finished at or after `since`, oldest first (charts read left to right)."""
        r = self.node_results
        query = sa.select(r).where(r.c.finished_at >= since, r.c.resource_type.in_(list(resource_types)))
        if statuses:
            query = query.where(r.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.order_by(r.c.finished_at, r.c.id))]

    def incident(self, dedup_key: str) -> dict[str, Any] | None:
        """The newest incident with this key (open or resolved), with `affected` and `slack_threads` decoded."""
        query = (
            sa.select(self.incidents)
            .where(self.incidents.c.dedup_key == dedup_key)
            .order_by(self.incidents.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        record = dict(row._mapping)
        record["affected"] = json.loads(record["affected"])
        record["slack_threads"] = json.loads(record["slack_threads"])
        return record

    # ------------------------------------------------------------------ dbt duration baselines
    def record_duration(self, node_id: str, seconds: float, run_id: str) -> None:
        """Remember a successful dbt node duration (one per run; a retried run keeps its latest)."""
        run_id = run_key(run_id)
        with self.engine.begin() as conn:
            conn.execute(
                sa.delete(self.durations).where(self.durations.c.node_id == node_id, self.durations.c.run_id == run_id)
            )
            conn.execute(
                sa.insert(self.durations).values(
                    node_id=node_id, run_id=run_id, seconds=float(seconds), recorded_at=time.time()
                )
            )

    def baseline_for(self, node_id: str) -> Baseline | None:
        """Median of the last `alerts.slow.baseline_samples` successful durations; None below `min_samples`."""
        slow = self.config.alerts.slow
        query = (
            sa.select(self.durations.c.seconds).where(self.durations.c.node_id == node_id)
            .order_by(self.durations.c.recorded_at.desc(), self.durations.c.id.desc()).limit(slow.baseline_samples)
        )  # fmt: skip
        with self.engine.connect() as conn:
            samples = list(conn.execute(query).scalars())
        if len(samples) < slow.min_samples:
            return None
        return Baseline(median=statistics.median(samples), samples=len(samples))

    def baselines(self) -> dict[str, Baseline]:
        """`baseline_for` of every node at once (one query): node id -> Baseline, nodes below `min_samples` left out."""
        slow, d = self.config.alerts.slow, self.durations
        rank = sa.func.row_number().over(partition_by=d.c.node_id, order_by=(d.c.recorded_at.desc(), d.c.id.desc()))
        recent = sa.select(d.c.node_id, d.c.seconds, rank.label("rank")).subquery()
        query = sa.select(recent.c.node_id, recent.c.seconds).where(recent.c.rank <= slow.baseline_samples)
        samples: dict[str, list[float]] = {}
        with self.engine.connect() as conn:
            for node_id, seconds in conn.execute(query):
                samples.setdefault(node_id, []).append(seconds)
        return {
            node_id: Baseline(median=statistics.median(values), samples=len(values))
            for node_id, values in samples.items()
            if len(values) >= slow.min_samples
        }

    def mark_slow_alerted(self, run_id: str, node_id: str) -> bool:
        """True the first time a (run, node) is marked: so a slow node is alerted once per run."""
        run_id = run_key(run_id)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sa.insert(self.slow_alerted).values(run_id=run_id, node_id=node_id, alerted_at=time.time())
                )
            return True
        except IntegrityError:
            return False

    # ------------------------------------------------------------------ dbt node results
    def record_node_result(
        self, node_id: str, resource_type: str, status: str, seconds: float, failures: int | None = None,
        dag_id: str | None = None, run_id: str | None = None, task_id: str | None = None,
        finished_at: float | None = None, try_number: int | None = None,
    ) -> None:  # fmt: skip
        """Remember one dbt node result (every status, every try)."""
        run_id = run_key(run_id)
        with self.engine.begin() as conn:
            conn.execute(
                sa.insert(self.node_results).values(
                    node_id=node_id, resource_type=resource_type, status=status, seconds=float(seconds),
                    failures=failures, dag_id=dag_id, run_id=run_id, task_id=task_id, try_number=try_number,
                    finished_at=time.time() if finished_at is None else finished_at,
                )
            )  # fmt: skip

    def node_results_for(self, node_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Newest first; all nodes when `node_id` is None."""
        query = sa.select(self.node_results).order_by(self.node_results.c.finished_at.desc(), self.node_results.c.id.desc())
        if node_id:
            query = query.where(self.node_results.c.node_id == node_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query.limit(limit))]

    def last_success(self, node_id: str) -> float | None:
        """When the node last built / passed (epoch seconds), or None."""
        r = self.node_results
        query = sa.select(sa.func.max(r.c.finished_at)).where(r.c.node_id == node_id, r.c.status.in_(["success", "pass"]))
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def was_slow_alerted(self, run_id: str, node_id: str) -> bool:
        run_id = run_key(run_id)
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(self.slow_alerted)
                .where(self.slow_alerted.c.run_id == run_id, self.slow_alerted.c.node_id == node_id)
            ).scalar_one() > 0  # fmt: skip

    # ------------------------------------------------------------------ task and DAG incidents
    def record_task_alert(self, dag_id: str, run_id: str, task_id: str, result: EnqueueResult, dedup_key: str) -> None:
        """Remember where a failed task's alert went (its own incident, or the upstream one it folded into). The key is
        kept as the incidents keep theirs (redacted), so the DAG-level alert folds into them."""
        run_id, dedup_key = run_key(run_id), redact(dedup_key)
        with self.engine.begin() as conn:
            incident_key = None
            if result.incident_id is not None:
                incident_key = conn.execute(
                    sa.select(self.incidents.c.dedup_key).where(self.incidents.c.id == result.incident_id)
                ).scalar()
            conn.execute(
                sa.insert(self.task_alerts).values(
                    dag_id=dag_id, run_id=run_id, task_id=task_id, dedup_key=dedup_key, incident_key=incident_key,
                    recorded_at=time.time(),
                )
            )  # fmt: skip

    def has_task_alert(self, dag_id: str, run_id: str, task_id: str) -> bool:
        """Whether a failure of this task instance was already alerted (by its callback or the reconciler)."""
        t, run_id = self.task_alerts, run_key(run_id)
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sa.func.count()).select_from(t)
                .where(t.c.dag_id == dag_id, t.c.run_id == run_id, t.c.task_id == task_id)
            ).scalar_one() > 0  # fmt: skip

    def task_alert_keys(self, dag_id: str, run_id: str) -> list[str]:
        """The incident keys failed tasks of a DAG run alerted under (their own and the ones they folded into)."""
        t, run_id = self.task_alerts, run_key(run_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(t.c.dedup_key, t.c.incident_key).where(t.c.dag_id == dag_id, t.c.run_id == run_id).order_by(t.c.id)
            ).all()  # fmt: skip
        return list(dict.fromkeys(k for row in rows for k in (row.incident_key, row.dedup_key) if k))

    # ------------------------------------------------------------------ folding made visible
    def share_folded(self, incident_id: int, now: datetime | None = None) -> tuple[int, ...]:
        """Name an incident's affected work where people read it.

        The root alert's stored payload takes the incident's affected list, so a root message not yet sent names
        them. If a root Slack message already went out (or is going), one threaded follow-up per channel says
        "also affected: ..."; a follow-up still pending is refreshed rather than duplicated. Returns new delivery ids.
        """
        ts = (now or datetime.now(UTC)).timestamp()
        with self.engine.begin() as conn:
            incident = conn.execute(sa.select(self.incidents).where(self.incidents.c.id == incident_id)).first()
            if incident is None or incident.status != OPEN:
                return ()
            affected = json.loads(incident.affected)
            payload = conn.execute(
                sa.select(self.alerts.c.payload).where(self.alerts.c.id == incident.root_alert_id)
            ).scalar_one()  # fmt: skip
            root = Alert.from_json(payload)
            conn.execute(
                sa.update(self.alerts).where(self.alerts.c.id == incident.root_alert_id)
                .values(payload=root.replace(affected=affected).to_json())
            )  # fmt: skip
            d = self.deliveries
            root_slack = conn.execute(
                sa.select(d.c.destination, d.c.status).where(
                    d.c.alert_id == incident.root_alert_id, d.c.purpose == FOR_ALERT, d.c.channel == "slack"
                )
            ).all()  # fmt: skip
            gone = sorted({row.destination for row in root_slack if row.status != PENDING})
            if not gone:
                return ()
            update = root.replace(
                subject=f"Also affected by this incident ({len(affected)}): {', '.join(affected)}",
                summary=f"Downstream work failed or slowed because of: {root.subject}",
                facts={}, error="", affected=affected, links={k: v for k, v in root.links.items() if k == "Runbook"},
                dag_id=None, task_id=None, run_id=None, node_id=None, recovery_of=None,
            )  # fmt: skip
            pending = conn.execute(
                sa.select(d.c.id, d.c.alert_id).where(
                    d.c.incident_id == incident.id, d.c.purpose == FOLLOW_UP, d.c.status == PENDING
                )
            ).all()  # fmt: skip
            if pending:
                for alert_id in {row.alert_id for row in pending}:
                    conn.execute(
                        sa.update(self.alerts).where(self.alerts.c.id == alert_id)
                        .values(payload=update.to_json(), subject=update.subject)
                    )  # fmt: skip
                return ()
            alert_id = self._insert_alert(conn, update, FOLLOW_UP, incident.id, ts)
            return self._insert_deliveries(
                conn, alert_id, incident.id, [("slack", destination) for destination in gone], ts, purpose=FOLLOW_UP
            )


@functools.cache
def get_store() -> AlertStore:
    """The process-wide store at VYAPAR_ALERT_STORE_URL (default: sqlite in DATA_DIR); tables created on first use."""
    return AlertStore()


def enqueue(alert: Alert, upstream_keys: Iterable[str] = ()) -> EnqueueResult:
    """Hand an alert over for delivery: durable, deduplicated, folded into an open upstream incident, or silenced.

    Never sends anything itself (call `kick_flush()` after, or let the flusher pick it up).
    """
    return get_store().enqueue(alert, upstream_keys)
