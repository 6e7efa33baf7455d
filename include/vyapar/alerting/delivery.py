"""Deliver the outbox: lease due deliveries, send them, then record sent / retry with backoff / dead-letter.

Two things call `flush`, and nothing else delivers: the process that raised the alert, at once (`deliver_soon`),
and the sweeper thread in the scheduler (`deliver_forever`, started by plugins/vyapar_alerting_listener.py), which
retries each delivery when it comes due and takes over the work of a process that died. Safe in several processes
at once (leases) and after a crash (a Slack message that may have been posted is looked up before any resend).
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from include.vyapar import settings
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import AlertingConfig, get_config
from include.vyapar.alerting.formatting import email_content, slack_message
from include.vyapar.alerting.redaction import redact
from include.vyapar.alerting.router import destination_for, route_for
from include.vyapar.alerting.senders import DeliveryError, EmailSender, SlackSender, SlackWebhookSender
from include.vyapar.alerting.store import FOLLOW_UP, AlertStore, ClaimedDelivery, get_store

log = logging.getLogger(__name__)
DEGRADED = "alerting_degraded"
# How far before its first unconfirmed attempt a message may carry a Slack ts (clock skew between us and Slack).
CLOCK_SKEW_SECONDS = 60


@dataclass
class FlushReport:
    sent: int = 0
    already_sent: int = 0  # found in Slack after a crash, recorded without resending
    retried: int = 0
    dead: int = 0
    deferred: int = 0  # held back without an attempt: channel cooling down, or a recovery waiting for its thread
    lost: int = 0  # the lease passed to another deliverer before the send: that one sends it
    errors: list[str] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return self.sent + self.already_sent + self.retried + self.dead + self.deferred + self.lost


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

    # Set the senders up before taking any lease: a cold one (imports, the connection) takes seconds, and a lease
    # that ran out meanwhile would let a second deliverer send the same message.
    for channel in store.due_channels(clock()):
        if channel in senders:
            senders[channel].load_secrets()

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
            outcome = _send(delivery, senders[delivery.channel], store, clock)
        except DeliveryError as exc:
            _record_failure(store, config, delivery, exc, clock(), report, cooling_until)
            continue
        if outcome in ("deferred", "lost"):
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome == "lost":
                log.warning("delivery %s: its lease passed to another deliverer before the send; not sent here", delivery.id)
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


def _send(delivery: ClaimedDelivery, sender: Any, store: AlertStore, clock: Callable[[], float]) -> Any:
    alert = delivery.alert
    lease = store.config.delivery.lease_seconds
    try:
        sender.load_secrets()  # before formatting: a secret from a secrets backend is masked too
        if delivery.channel == "email":
            content = email_content(alert, alert_id=delivery.alert_id, note=delivery.note)
            if not store.renew_lease(delivery, clock(), lease):
                return "lost"
            return sender.send(delivery.destination, content, delivery_id=delivery.id), False
        thread_ts = None
        # Recoveries and follow-ups ("also affected: ...") reply in the incident's thread.
        if (alert.is_recovery or delivery.purpose == FOLLOW_UP) and sender.supports_threads:
            thread, root_on_its_way = store.slack_thread(delivery.incident_id, delivery.destination)
            if thread:
                thread_ts = thread["ts"]
            elif root_on_its_way:  # reply under the original once it exists, rather than beside it
                store.reschedule(
                    delivery, clock() + max(1.0, store.config.delivery.backoff_seconds), "", count_attempt=False
                )
                return "deferred"
        if delivery.unconfirmed_since is not None:  # an earlier attempt may have posted it: look before posting
            oldest = delivery.unconfirmed_since - CLOCK_SKEW_SECONDS
            receipt = sender.find_sent(delivery.destination, delivery.id, oldest=oldest, thread_ts=thread_ts)
            if receipt is not None:
                return receipt, True
        message = slack_message(alert, alert_id=delivery.alert_id, note=delivery.note)
        # The lease's clock restarts here, at the send: another deliverer can take the row over only after it.
        if not store.renew_lease(delivery, clock(), lease):
            return "lost"
        return sender.send(
            delivery.destination, message, thread_ts=thread_ts, alert_id=delivery.alert_id, delivery_id=delivery.id
        ), False
    except DeliveryError:
        raise
    except Exception as exc:  # noqa: BLE001 — our own failure, never the provider's answer: retried, never lost
        raise DeliveryError(redact(f"{type(exc).__name__}: {exc}"), transient=True, local=True) from None


def _backoff(policy: Any, attempts: int) -> float:
    return min(policy.max_backoff_seconds, policy.backoff_seconds * 2 ** max(0, attempts - 1))


def _record_failure(
    store: AlertStore, config: AlertingConfig, delivery: ClaimedDelivery, exc: DeliveryError, now: float,
    report: FlushReport, cooling_until: dict[str, float],
) -> None:  # fmt: skip
    policy = config.delivery
    if exc.local:
        # An error in this process (its set-up, its logging, a bug) says nothing about the delivery: the attempt
        # is not counted and never dead-letters; this process or the sweeper tries again after the backoff.
        delay = _backoff(policy, delivery.attempts)
        store.reschedule(delivery, now + delay, exc.raw, count_attempt=False)
        cooling_until[delivery.channel] = now + delay
        report.retried += 1
        log.warning(
            "delivery %s (%s %s) not attempted: an error in this process, not the provider's answer (attempt not "
            "counted), again in %.1fs: %s", delivery.id, delivery.channel, delivery.destination, delay, exc.raw,
        )  # fmt: skip
        return
    if exc.transient and delivery.attempts < policy.max_attempts:
        # The provider said when (Retry-After): honour it exactly.
        delay = exc.retry_after if exc.retry_after is not None else _backoff(policy, delivery.attempts)
        store.reschedule(delivery, now + delay, exc.raw, maybe_sent_at=delivery.leased_at if exc.maybe_sent else None)
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


# ---------------------------------------------------------------------------------------------- who delivers
# At most this many deliveries per in-process flush: a backlog is the sweeper's.
INLINE_LIMIT = 20
_inline_lock = threading.Lock()
_inline_worker: threading.Thread | None = None
_inline_again = False
_sweeper_wake = threading.Event()


def wake_sweeper() -> None:
    """Make this process's sweeper (if it runs one: the scheduler) look at the outbox, or at its stop flag, now."""
    _sweeper_wake.set()


def deliver_soon(*, wait: bool = True) -> bool:
    """The inline attempt: deliver what is due now, from this process, in a thread; never raises.

    The caller waits for the send, at most VYAPAR_ALERTING_INLINE_WAIT_SECONDS (10 s; a send takes well under one),
    because a task process may exit right after its callback. Whatever is not delivered by then (Slack slow or down,
    a backlog, this process dying) stays in the outbox for the scheduler's sweeper. Calls while a send is in flight
    coalesce into one more flush. VYAPAR_ALERTING_KICK=0 turns the inline attempt off (the sweeper still delivers).
    """
    global _inline_worker, _inline_again
    wake_sweeper()  # in the scheduler, the sweeper thread is the one to deliver
    if not settings.inline_delivery():
        return False
    try:
        with _inline_lock:
            if _inline_worker is not None and _inline_worker.is_alive():
                _inline_again = True
            else:
                _inline_again = False
                _inline_worker = threading.Thread(target=_inline_flush, name="alert-deliver", daemon=True)
                _inline_worker.start()
            worker = _inline_worker
        if wait:
            worker.join(settings.inline_wait_seconds())
            if worker.is_alive():
                log.info("in-process alert delivery still running; what it does not finish, the sweeper delivers")
        return True
    except Exception:  # noqa: BLE001
        log.warning("could not deliver in-process; the scheduler's sweeper will", exc_info=True)
        return False


def _inline_flush() -> None:
    global _inline_again
    while True:
        try:
            flush(limit=INLINE_LIMIT)
        except Exception:  # noqa: BLE001 — e.g. the store is unreachable from here: the sweeper delivers
            log.warning("in-process alert delivery failed; the scheduler's sweeper will deliver", exc_info=True)
            return
        with _inline_lock:
            if not _inline_again:
                return
            _inline_again = False


# The sweeper never sleeps less than this between flushes (a store it cannot read must not make it spin), and reads
# the outbox's next due time at least this often (another process may have scheduled a retry meanwhile): one cheap
# indexed read; it flushes (takes the write lock) only when something is due.
SWEEP_MIN_PAUSE_SECONDS = 1.0
SWEEP_POLL_SECONDS = 5.0


def deliver_forever(
    stop: threading.Event, interval: float, every_interval: Callable[[], Any] | None = None
) -> None:
    """The sweeper: flush when a delivery comes due (a retry's backoff or Retry-After, a dead deliverer's lease
    running out, a new alert), looking at most SWEEP_POLL_SECONDS late; `every_interval` (the reconciler) runs every
    `interval` s."""
    log.info(
        "vyapar alert sweeper: started (pid %s): delivers each alert when it comes due (looks every %.0f s), "
        "reconciles every %.0f s", os.getpid(), SWEEP_POLL_SECONDS, interval,
    )  # fmt: skip
    next_tick = 0.0
    while not stop.is_set():
        woken = _sweeper_wake.is_set()
        _sweeper_wake.clear()
        now = time.time()
        if every_interval is not None and now >= next_tick:
            next_tick = now + interval
            try:
                every_interval()
            except Exception:  # noqa: BLE001 — the sweeper must outlive any one failure
                log.exception("vyapar alert sweeper: the periodic check failed")
        due: float | None = None
        try:
            due = get_store().next_due_at()
            if woken or (due is not None and due <= time.time()):
                report = flush()
                if report.claimed:
                    log.info(
                        "vyapar alert sweeper: %s sent, %s already sent, %s retried, %s dead, %s deferred",
                        report.sent, report.already_sent, report.retried, report.dead, report.deferred,
                    )  # fmt: skip
                due = get_store().next_due_at()
        except Exception:  # noqa: BLE001
            log.exception("vyapar alert sweeper: flush failed; trying again")
            due = None  # look again after the poll interval, not in a tight loop
        wake_at = min(now + SWEEP_POLL_SECONDS, next_tick if every_interval is not None else math.inf, due or math.inf)
        _sweeper_wake.wait(max(SWEEP_MIN_PAUSE_SECONDS, wake_at - time.time()))
    log.info("vyapar alert sweeper: stopped")


# ---------------------------------------------------------------------------------------------- no store
def deliver_directly(alert: Alert, why: str, config: AlertingConfig | None = None) -> dict[str, str]:
    """Send an alert the store could not take straight to its routed destinations: one attempt each, no outbox
    (so no retry and no deduplication). Returns channel -> "sent" or the error; never raises."""
    outcomes: dict[str, str] = {}
    why = redact(why)  # it goes into the message's note
    try:
        config = config or get_config()
        senders = build_senders(config)
        channels = route_for(alert.severity, config)
    except Exception as exc:  # noqa: BLE001
        return {"*": redact(f"{type(exc).__name__}: {exc}")}
    note = f"The alert store could not take this alert ({why}): it was sent directly, once, without retries."
    for channel in channels:
        try:
            destination = destination_for(channel, alert.severity, config)
            sender = senders[channel]
            sender.load_secrets()
            if channel == "email":
                sender.send(destination, email_content(alert, note=note), delivery_id=time.time_ns())
            else:
                message = slack_message(alert, note=note)
                sender.send(destination, message, thread_ts=None, alert_id=0, delivery_id=0)
            outcomes[channel] = "sent"
        except DeliveryError as exc:
            outcomes[channel] = exc.raw
        except Exception as exc:  # noqa: BLE001
            outcomes[channel] = redact(f"{type(exc).__name__}: {exc}")
    return outcomes
