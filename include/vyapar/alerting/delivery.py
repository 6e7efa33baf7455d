"""Drain the outbox: lease due deliveries, send them, then record sent / retry with backoff / dead-letter.

Safe to run in several processes at once (leases) and after a crash (a Slack message is looked up before resending).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from include.vyapar import settings
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import AlertingConfig
from include.vyapar.alerting.formatting import email_content, slack_message
from include.vyapar.alerting.redaction import redact
from include.vyapar.alerting.senders import DeliveryError, EmailSender, SlackSender, SlackWebhookSender
from include.vyapar.alerting.store import FOLLOW_UP, AlertStore, ClaimedDelivery, get_store

log = logging.getLogger(__name__)
DEGRADED = "alerting_degraded"
# How far before its lease a crashed delivery's message may carry a Slack ts (clock skew between us and Slack).
CLOCK_SKEW_SECONDS = 60


@dataclass
class FlushReport:
    sent: int = 0
    already_sent: int = 0  # found in Slack after a crash, recorded without resending
    retried: int = 0
    dead: int = 0
    deferred: int = 0  # held back without an attempt: channel cooling down, or a recovery waiting for its thread
    errors: list[str] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return self.sent + self.already_sent + self.retried + self.dead + self.deferred


def build_senders(config: AlertingConfig) -> dict[str, Any]:
    timeout = config.delivery.timeout_seconds
    slack: Any
    if config.slack.connection_id:
        slack = SlackSender(config.slack.connection_id, timeout)
    else:
        slack = SlackWebhookSender(config.slack.webhook_connection_id, timeout)
    return {"slack": slack, "email": EmailSender(config.email.connection_id, config.email.from_address, timeout)}


def flush(
    now: float | None = None,
    limit: int = 200,
    *,
    store: AlertStore | None = None,
    senders: dict[str, Any] | None = None,
) -> FlushReport:
    """Send what is due, at most `limit` deliveries. `now` (epoch seconds) pins the clock, for tests."""
    store = store or get_store()
    config = store.config
    senders = senders or build_senders(config)
    report = FlushReport()
    cooling_until: dict[str, float] = {}  # channel -> when to try again after a transient failure in this flush
    recovered_channels: set[str] = set()

    def clock() -> float:
        return time.time() if now is None else now

    while report.claimed < limit:
        claimed = store.claim_due(clock(), 1, config.delivery.lease_seconds)
        if not claimed:
            break
        delivery = claimed[0]
        if delivery.channel in cooling_until:
            # Due a hair before the failed one, so the next probe of the channel is a different delivery and one
            # unlucky alert does not burn all its attempts on an outage the others sit out.
            store.reschedule(delivery, cooling_until[delivery.channel] - 0.001, "", count_attempt=False)
            report.deferred += 1
            continue
        try:
            outcome = _send(delivery, senders[delivery.channel], store, clock())
        except DeliveryError as exc:
            _record_failure(store, config, delivery, exc, clock(), report, cooling_until)
            continue
        if outcome == "deferred":
            report.deferred += 1
            continue
        receipt, found = outcome
        store.mark_sent(delivery, receipt.provider_id, receipt.provider_channel, clock())
        if found:
            report.already_sent += 1
            log.info(
                "delivery %s was already in Slack (message %s): recorded, not resent", delivery.id, receipt.provider_id
            )
        else:
            report.sent += 1
            log.info("delivered alert %s to %s %s", delivery.alert_id, delivery.channel, delivery.destination)
        if delivery.alert.kind != DEGRADED and delivery.channel not in recovered_channels:
            recovered_channels.add(delivery.channel)
            _end_degradation(store, delivery.channel)
    return report


def _send(delivery: ClaimedDelivery, sender: Any, store: AlertStore, now: float) -> Any:
    alert = delivery.alert
    try:
        sender.load_secrets()  # before formatting: a secret from a secrets backend is masked too
        if delivery.channel == "email":
            content = email_content(alert, alert_id=delivery.alert_id, note=delivery.note)
            return sender.send(delivery.destination, content, delivery_id=delivery.id), False
        thread_ts = None
        # Recoveries and follow-ups ("also affected: ...") reply in the incident's thread.
        if (alert.is_recovery or delivery.purpose == FOLLOW_UP) and sender.supports_threads:
            thread, root_on_its_way = store.slack_thread(delivery.incident_id, delivery.destination)
            if thread:
                thread_ts = thread["ts"]
            elif root_on_its_way:  # reply under the original once it exists, rather than beside it
                store.reschedule(
                    delivery, now + max(1.0, store.config.delivery.backoff_seconds), "", count_attempt=False
                )
                return "deferred"
        if delivery.lease_expired and delivery.previous_leased_at is not None:
            oldest = delivery.previous_leased_at - CLOCK_SKEW_SECONDS
            receipt = sender.find_sent(delivery.destination, delivery.id, oldest=oldest, thread_ts=thread_ts)
            if receipt is not None:
                return receipt, True
        message = slack_message(alert, alert_id=delivery.alert_id, note=delivery.note)
        return sender.send(
            delivery.destination, message, thread_ts=thread_ts, alert_id=delivery.alert_id, delivery_id=delivery.id
        ), False
    except DeliveryError:
        raise
    except Exception as exc:  # noqa: BLE001 — an unexpected failure is retried (bounded by max_attempts), never lost
        raise DeliveryError(redact(f"{type(exc).__name__}: {exc}"), transient=True) from None


def _record_failure(
    store: AlertStore, config: AlertingConfig, delivery: ClaimedDelivery, exc: DeliveryError, now: float,
    report: FlushReport, cooling_until: dict[str, float],
) -> None:  # fmt: skip
    policy = config.delivery
    if exc.transient and delivery.attempts < policy.max_attempts:
        if exc.retry_after is not None:
            delay = exc.retry_after  # the provider said when: honour it exactly
        else:
            delay = min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** (delivery.attempts - 1))
        store.reschedule(delivery, now + delay, exc.raw)
        cooling_until[delivery.channel] = now + delay
        report.retried += 1
        log.warning(
            "delivery %s (%s %s) failed, attempt %s/%s, retrying in %.1fs: %s",
            delivery.id, delivery.channel, delivery.destination, delivery.attempts, policy.max_attempts, delay, exc.raw,
        )  # fmt: skip
        return
    why = "permanent error" if not exc.transient else f"gave up after {delivery.attempts} attempts"
    email_id = store.mark_dead(delivery, exc.raw, now)
    report.dead += 1
    report.errors.append(exc.raw)
    log.error(
        "delivery %s (%s %s) dead-lettered (%s): %s%s", delivery.id, delivery.channel, delivery.destination, why, exc.raw,
        f"; sent by email instead (delivery {email_id})" if email_id else "",
    )  # fmt: skip
    if delivery.alert.kind != DEGRADED:
        store.enqueue(
            Alert(
                kind=DEGRADED,
                subject=f"Alert delivery to {delivery.channel} is failing",
                summary=f"Alerts to {delivery.channel} are being dead-lettered ({why}). Check the connection and the destination.",
                facts={"Channel": delivery.channel, "Destination": delivery.destination, "Undelivered alert": delivery.alert.subject, "Attempts": delivery.attempts},
                error=exc.raw,
                dedup_key=f"{DEGRADED}:{delivery.channel}",
            ),
            now=datetime.fromtimestamp(now, UTC),
        )  # fmt: skip


def _end_degradation(store: AlertStore, channel: str) -> None:
    key = f"{DEGRADED}:{channel}"
    if store.has_open_incident(key):
        store.enqueue(Alert(kind="recovered", subject=f"Alert delivery to {channel} works again", recovery_of=key))


# At most this many deliveries per in-process flush: a backlog is the detached flusher's and the sweeper's job.
INLINE_LIMIT = 20
_inline_lock = threading.Lock()
_inline_worker: threading.Thread | None = None
_inline_again = False


def _kick_disabled() -> bool:
    return os.environ.get("VYAPAR_ALERTING_KICK", "1").lower() in ("0", "false", "no")


def _inline_wait_seconds() -> float:
    try:
        return float(os.environ.get("VYAPAR_ALERTING_INLINE_WAIT_SECONDS", "10"))
    except ValueError:
        return 10.0


def deliver_soon() -> bool:
    """Deliver what is due now, from this process, in a thread; never raises.

    The alert reaches Slack a fraction of a second after it is stored: no process to start, nothing to import
    (the detached flusher spent ~4 s on that). The caller waits for the send, at most
    VYAPAR_ALERTING_INLINE_WAIT_SECONDS (10 s; a send takes well under one): a task process may exit right after
    its callback and take a half-sent delivery with it, which then waits for its lease to expire. When the send takes longer (Slack slow or down, a backlog), the detached flusher is started
    as well and the outbox does the rest: the in-flight delivery is leased, retried by a flusher or the
    scheduler's sweeper, and looked up in Slack before any resend. Calls while a send is in flight coalesce
    into one more flush. `VYAPAR_ALERTING_DELIVERY=detached` restores the detached flusher alone;
    VYAPAR_ALERTING_KICK=0 turns both off.
    """
    global _inline_worker, _inline_again
    if _kick_disabled():
        return False
    if os.environ.get("VYAPAR_ALERTING_DELIVERY", "inline").lower() == "detached":
        return kick_flush()
    try:
        with _inline_lock:
            if _inline_worker is not None and _inline_worker.is_alive():
                _inline_again = True
            else:
                _inline_again = False
                _inline_worker = threading.Thread(target=_inline_flush, name="alert-deliver", daemon=True)
                _inline_worker.start()
            worker = _inline_worker
        worker.join(_inline_wait_seconds())
        if worker.is_alive():
            log.info("in-process alert delivery still running; starting the detached flusher as well")
            kick_flush()
        return True
    except Exception:  # noqa: BLE001
        log.warning("could not deliver in-process; starting the detached flusher", exc_info=True)
        return kick_flush()


def _inline_flush() -> None:
    global _inline_again
    while True:
        try:
            report = flush(limit=INLINE_LIMIT)
            if report.claimed >= INLINE_LIMIT:  # more waiting: hand the rest to a full flusher
                kick_flush()
        except Exception:  # noqa: BLE001 — e.g. the store is unreachable from here: let a fresh process try
            log.warning("in-process alert delivery failed; starting the detached flusher", exc_info=True)
            kick_flush()
            return
        with _inline_lock:
            if not _inline_again:
                return
            _inline_again = False


def kick_flush() -> bool:
    """Start a detached `python -m include.vyapar.alerting flush` so a new alert goes out within seconds.

    Returns at once and never raises (a callback must not fail because of alerting). Off when VYAPAR_ALERTING_KICK=0.
    """
    if _kick_disabled():
        return False
    try:
        settings.DATA_DIR.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        with open(settings.DATA_DIR / "alert_flush.log", "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "include.vyapar.alerting", "flush"],
                cwd=settings.REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )  # fmt: skip
        # Reap it when it ends, so a long-lived caller (scheduler, listener) collects no zombies.
        threading.Thread(target=process.wait, name="alert-flush-reaper", daemon=True).start()
        return True
    except Exception:  # noqa: BLE001
        log.warning("could not start the alert flusher; the next flush will deliver", exc_info=True)
        return False
