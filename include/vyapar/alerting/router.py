"""Routing: which channels and destinations a severity goes to, and whether a silence holds an alert back."""

from __future__ import annotations

import fnmatch
from datetime import datetime

from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import AlertingConfig, get_config


def route_for(severity: str, config: AlertingConfig | None = None) -> list[str]:
    """The channels for a severity, as declared under `routes` in alerting.yaml (e.g. high -> [slack, email]),
    narrowed to the channels this deployment has (`channels`); when none of a route's channels is available,
    all available channels (an alert is rerouted, never dropped)."""
    config = config or get_config()
    try:
        declared = config.routes[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r} (declared: {', '.join(config.severities)})") from None
    return [c for c in declared if c in config.channels] or list(config.channels)


def destination_for(channel: str, severity: str, config: AlertingConfig | None = None) -> str:
    """Where a channel delivers for a severity: the Slack channel name, or comma-separated email recipients."""
    config = config or get_config()
    if channel == "slack":
        return config.slack.channels[severity]
    if channel == "email":
        # Severities without their own recipients (a dead-lettered low alert) fall back to the most severe list.
        recipients = config.email.recipients.get(severity)
        if not recipients:
            most_severe = max(config.email.recipients, key=config.severity_rank)
            recipients = config.email.recipients[most_severe]
        return ", ".join(recipients)
    raise ValueError(f"unknown channel {channel!r}")


def silence_for(alert: Alert, now: datetime, config: AlertingConfig | None = None) -> str | None:
    """Why this alert must not be delivered right now (an active maintenance window or silence), or None."""
    config = config or get_config()
    for window in config.maintenance_windows:
        if window.active_at(now):
            return f"maintenance window until {window.end.isoformat()}: {window.reason}"
    for silence in config.silences:
        if not silence.active_at(now):
            continue
        if silence.dag_id and not (alert.dag_id and fnmatch.fnmatchcase(alert.dag_id, silence.dag_id)):
            continue
        if silence.model and not _model_matches(alert.node_id, silence.model):
            continue
        if silence.kind and alert.kind != silence.kind:
            continue
        matched = ", ".join(
            f"{k}={v}" for k, v in (("dag_id", silence.dag_id), ("model", silence.model), ("kind", silence.kind)) if v
        )
        return f"silence ({matched}): {silence.reason}"
    return None


def _model_matches(node_id: str | None, pattern: str) -> bool:
    """`fct_orders` matches the dbt unique_id `model.vyaparbazaar.fct_orders`; globs and full ids work too."""
    if not node_id:
        return False
    return fnmatch.fnmatchcase(node_id, pattern) or fnmatch.fnmatchcase(node_id.rsplit(".", 1)[-1], pattern)
