"""The one way to raise an alert: store it (incident, dedup, folding), then deliver it from this process at once.

The outbox and the scheduler's sweeper (delivery.py) retry what the inline attempt leaves. When the store cannot take
an alert (gone, unreachable), it is logged in full and sent directly: never lost silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import get_config
from include.vyapar.alerting.delivery import deliver_directly, deliver_soon
from include.vyapar.alerting.formatting import redacted
from include.vyapar.alerting.redaction import redact
from include.vyapar.alerting.store import DIRECT, FOLDED, OPEN, EnqueueResult, enriched, get_store

log = logging.getLogger(__name__)


def raise_alert(
    alert: Alert, upstream_keys: Iterable[str] = (), *, kick: bool = True, share_fold: bool = True
) -> EnqueueResult:
    """Enqueue an alert and deliver it; a fold into an open upstream incident is shared with that incident's readers
    (unless the root alert already names it: `share_fold=False`). `kick=False`: leave delivery to the sweeper."""
    try:
        store = get_store()
        result = store.enqueue(alert, upstream_keys)
    except Exception as exc:  # noqa: BLE001 — the store is gone or unreachable: the alert must still get out
        return _without_store(alert, exc)
    log.info(
        "alert %s (%s): %s%s", redact(alert.dedup_key), redact(alert.subject), result.status,
        f" — {result.reason}" if result.reason else "",
    )  # fmt: skip
    if share_fold and result.status == FOLDED and result.incident_id is not None and alert.node_id:
        try:
            store.share_folded(result.incident_id)
        except Exception:  # noqa: BLE001 — the alert itself is stored; only the "also affected" note is missing
            log.exception("could not share the fold of %s into incident %s", alert.dedup_key, result.incident_id)
    if kick and (result.delivery_ids or result.status in (OPEN, FOLDED)):
        deliver_soon()
    return result


def raise_notice(
    alert: Alert, *, now: datetime | None = None, kick: bool = True, channels: Iterable[str] | None = None
) -> EnqueueResult:
    """A notice (the daily digest): routed and delivered like an alert, but it opens no incident. `channels`
    narrows its route (store.enqueue_notice)."""
    try:
        result = get_store().enqueue_notice(alert, now=now, channels=None if channels is None else list(channels))
    except Exception as exc:  # noqa: BLE001
        return _without_store(alert, exc)
    if kick:
        deliver_soon()
    return result


def resolve(key: str, subject: str, *, kick: bool = True, **fields: object) -> EnqueueResult | None:
    """Send a recovery for `key` if it has an open incident (one cheap query otherwise)."""
    try:
        store = get_store()
        if not key or not store.has_open_incident(key):
            return None
        result = store.enqueue(Alert(kind="recovered", subject=subject, recovery_of=key, **fields))  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 — without the store nobody knows whether the incident is open
        log.error("ALERT RECOVERY NOT STORED (%s): %s — %s", _described(exc), redact(key), redact(subject))
        return None
    log.info("recovery of %s: %s", key, result.status)
    if kick and result.delivery_ids:
        deliver_soon()
    return result


def _described(exc: BaseException) -> str:
    """An exception as one redacted line: its text may carry a connection URL or the alert itself."""
    return redact(f"{type(exc).__name__}: {exc}")


def _without_store(alert: Alert, exc: BaseException) -> EnqueueResult:
    why = _described(exc)
    alert = redacted(alert)  # first: whatever fails next, only the redacted alert is logged or sent
    try:
        alert = enriched(alert, get_config())
    except Exception as config_exc:  # noqa: BLE001 — an unreadable config: send what we have
        log.error("could not complete the alert from the alerting config (%s); sending it as it is", _described(config_exc))
    log.error(
        "ALERT NOT STORED (%s); delivering it directly. %s [%s, %s] dag=%s task=%s run=%s\n%s\n%s",
        why, alert.subject, alert.kind, alert.severity, alert.dag_id, alert.task_id, alert.run_id, alert.summary,
        alert.error,
    )  # fmt: skip
    outcomes = deliver_directly(alert, why)
    delivered = sorted(channel for channel, outcome in outcomes.items() if outcome == "sent")
    failed = {channel: redact(outcome) for channel, outcome in outcomes.items() if outcome != "sent"}
    (log.error if failed or not delivered else log.warning)(
        "alert %s sent directly to %s; failed: %s", alert.dedup_key, ", ".join(delivered) or "nothing", failed or "none"
    )
    return EnqueueResult(0, DIRECT, None, reason=why)
