"""Alerting: callbacks and watchers build an `Alert` and `enqueue` it; `flush` delivers to Slack and email.

    from include.vyapar.alerting import Alert, enqueue, kick_flush
    enqueue(Alert(kind="failed_run", subject="vyapar_marts.fct_orders failed", dag_id=..., error=log_tail))
    kick_flush()   # non-blocking: a detached process delivers within seconds

Rules `enqueue` applies, in order: an active silence or maintenance window stores the alert as `silenced`;
a recovery (`recovery_of=key`) resolves the open incident and is sent to the same channels, threaded in Slack
(no open incident: dropped); an open incident with the same `dedup_key` makes it a `repeat` (not re-sent);
an open incident among `upstream_keys` folds it into that incident (`folded`, listed as affected); otherwise a
new incident opens and one delivery per routed channel joins the outbox.
"""

from include.vyapar.alerting.alert import Alert, task_log_url
from include.vyapar.alerting.config import AlertingConfigError, get_config, load_alerting_config
from include.vyapar.alerting.delivery import FlushReport, flush, kick_flush
from include.vyapar.alerting.router import route_for
from include.vyapar.alerting.store import AlertStore, Baseline, EnqueueResult, enqueue, get_store

__all__ = [
    "Alert", "AlertStore", "AlertingConfigError", "Baseline", "EnqueueResult", "FlushReport", "enqueue", "flush",
    "get_config", "get_store", "kick_flush", "load_alerting_config", "route_for", "task_log_url",
]  # fmt: skip
