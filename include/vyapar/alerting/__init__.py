"""Alerting: callbacks and watchers build an `Alert` and `raise_alert` it; the outbox delivers it to Slack and email.

    from include.vyapar.alerting import Alert, raise_alert
    raise_alert(Alert(kind="failed_run", subject="vyapar_marts.fct_orders failed", dag_id=..., error=log_tail))

`raise_alert` stores the alert (deduplicated, folded or silenced: see `AlertStore.enqueue`), then this process tries
to deliver it at once; the scheduler's sweeper retries what that attempt left (docs/alerting.md). If the store
cannot take it, the alert is logged and sent directly. `resolve(key, subject)` sends a recovery.
"""

from include.vyapar.alerting.alert import Alert, task_log_url
from include.vyapar.alerting.config import AlertingConfigError, get_config, load_alerting_config
from include.vyapar.alerting.delivery import FlushReport, flush
from include.vyapar.alerting.incidents import raise_alert, raise_notice, resolve
from include.vyapar.alerting.router import route_for
from include.vyapar.alerting.store import (
    AlertStore,
    AlertStoreGone,
    Baseline,
    EnqueueResult,
    enqueue,  # noqa: F401 — the store's step alone (tests); raise with raise_alert
    get_store,
)

__all__ = [
    "Alert", "AlertStore", "AlertStoreGone", "AlertingConfigError", "Baseline", "EnqueueResult", "FlushReport", "flush",
    "get_config", "get_store", "load_alerting_config", "raise_alert", "raise_notice", "resolve", "route_for",
    "task_log_url",
]  # fmt: skip
