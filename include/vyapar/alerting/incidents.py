"""Raise and resolve incidents the way every callback and watcher should: enqueue, make folding visible, deliver.

Delivery happens at once from this process (`deliver_soon`: a send of a few hundred ms, waited for at most a few
seconds); the outbox and its flushers are the safety net.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.delivery import deliver_soon
from include.vyapar.alerting.store import FOLDED, OPEN, EnqueueResult, get_store

log = logging.getLogger(__name__)


def raise_alert(
    alert: Alert, upstream_keys: Iterable[str] = (), *, kick: bool = True, share_fold: bool = True
) -> EnqueueResult:
    """Enqueue an alert; a fold into an open upstream incident is shared with that incident's readers
    (unless the root alert already names it: `share_fold=False`)."""
    store = get_store()
    result = store.enqueue(alert, upstream_keys)
    log.info("alert %s (%s): %s%s", alert.dedup_key, alert.subject, result.status, f" — {result.reason}" if result.reason else "")
    if share_fold and result.status == FOLDED and result.incident_id is not None and alert.node_id:
        store.share_folded(result.incident_id)
    if kick and (result.delivery_ids or result.status in (OPEN, FOLDED)):
        deliver_soon()
    return result


def resolve(key: str, subject: str, *, kick: bool = True, **fields: object) -> EnqueueResult | None:
    """Send a recovery for `key` if it has an open incident (one cheap query otherwise)."""
    store = get_store()
    if not key or not store.has_open_incident(key):
        return None
    result = store.enqueue(Alert(kind="recovered", subject=subject, recovery_of=key, **fields))  # type: ignore[arg-type]
    log.info("recovery of %s: %s", key, result.status)
    if kick and result.delivery_ids:
        deliver_soon()
    return result
