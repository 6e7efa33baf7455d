"""The alerting configuration: one YAML file (alerting.yaml), validated strictly so a typo names its key path."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from include.vyapar import settings

DEFAULT_CONFIG_PATH = settings.DEFAULT_ALERTING_CONFIG
CHANNELS = ("slack", "email")
ALERT_KINDS = ("failed_run", "data_quality", "slow", "stale_data", "resources", "alerting_degraded", "digest")
RECOVERED = "recovered"


def _known_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r} (allowed: {', '.join(CHANNELS)})")
    return channel


Channel = Annotated[str, AfterValidator(_known_channel)]


class AlertingConfigError(ValueError):
    """The alerting file is missing, unparsable or invalid; the message names the file and the key path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AlertKind(_Strict):
    severity: str


class SlowAlert(AlertKind):
    threshold_ratio: float = Field(gt=1.0)
    baseline_samples: int = Field(ge=1)
    min_samples: int = Field(ge=1)
    # Slower by less than this is jitter, never alerted (a 0.1 s test taking 0.2 s is not news).
    min_excess_seconds: float = Field(default=5, ge=0)
    # The running-task watchdog adds this to the expected time: dbt's process start and parse, which the
    # per-node baselines (dbt's own execution times) do not include.
    startup_allowance_seconds: float = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _min_within_window(self) -> SlowAlert:
        if self.min_samples > self.baseline_samples:
            raise ValueError(f"min_samples ({self.min_samples}) exceeds baseline_samples ({self.baseline_samples})")
        return self


class StaleDataAlert(AlertKind):
    max_age_minutes: int = Field(gt=0)


RESOURCE_METRICS = ("memory", "disk", "cpu")


def _known_metric(metric: str) -> str:
    if metric not in RESOURCE_METRICS:
        raise ValueError(f"unknown metric {metric!r} (allowed: {', '.join(RESOURCE_METRICS)})")
    return metric


class ResourcesAlert(AlertKind):
    threshold_percent: float = Field(gt=0, le=100)
    # Sampled by every dbt task while it runs. cpu is judged on its mean over cpu_window_seconds: DuckDB
    # legitimately pegs every core for a while, only a sustained saturation is news.
    metrics: list[Annotated[str, AfterValidator(_known_metric)]] = ["memory", "disk", "cpu"]
    sample_seconds: float = Field(default=5, gt=0)
    cpu_window_seconds: float = Field(default=600, gt=0)

    @model_validator(mode="after")
    def _window_holds_samples(self) -> ResourcesAlert:
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("a metric is listed twice")
        if self.cpu_window_seconds < self.sample_seconds:
            raise ValueError(
                f"cpu_window_seconds ({self.cpu_window_seconds}) is shorter than sample_seconds ({self.sample_seconds})"
            )
        return self


class Alerts(_Strict):
    failed_run: AlertKind
    data_quality: AlertKind
    slow: SlowAlert
    stale_data: StaleDataAlert
    resources: ResourcesAlert
    alerting_degraded: AlertKind
    digest: AlertKind  # the daily health report: a notice, never an incident


class SlackConfig(_Strict):
    connection_id: str | None = "slack_alerts"
    webhook_connection_id: str | None = None
    channels: dict[str, str]

    @model_validator(mode="after")
    def _some_connection(self) -> SlackConfig:
        if not self.connection_id and not self.webhook_connection_id:
            raise ValueError("set connection_id (Slack API) or webhook_connection_id (incoming webhook)")
        return self


class EmailConfig(_Strict):
    connection_id: str = "smtp_alerts"
    from_address: str = Field(alias="from")
    recipients: dict[str, list[str]]

    @field_validator("recipients")
    @classmethod
    def _non_empty(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for severity, addresses in value.items():
            if not addresses:
                raise ValueError(f"no recipients for {severity!r}")
            for address in addresses:
                if "@" not in address:
                    raise ValueError(f"not an email address: {address!r}")
        return value


# The runbooks page the platform serves (include/vyapar/health/app.py), behind the UI's login.
RUNBOOKS_PATH = "/vyapar-health/runbooks"


class LinksConfig(_Strict):
    # Where every link in an alert points (task log, DAG run, runbooks, health view). As loaded, settings.platform_base_url
    # has resolved it: Airflow's [api] base_url, else VYAPAR_AIRFLOW_BASE_URL, else this file's value.
    airflow_base_url: str = settings.DEFAULT_AIRFLOW_BASE_URL
    # None: the platform's own runbooks page, <airflow_base_url>/vyapar-health/runbooks.
    runbook_base_url: str | None = None

    @field_validator("runbook_base_url")
    @classmethod
    def _opens_elsewhere(cls, value: str | None) -> str | None:
        # An alert is read on another machine: a path or file:// link would open only on the sender's.
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL the recipient can open, not {value!r}")
        return value


class DeliveryConfig(_Strict):
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=10, ge=0)
    max_backoff_seconds: float = Field(default=900, ge=0)
    timeout_seconds: float = Field(default=10, gt=0)
    lease_seconds: float = Field(default=120, gt=0)

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> DeliveryConfig:
        # A lease shorter than a send would let a second flusher re-send a message still in flight.
        if self.lease_seconds < 3 * self.timeout_seconds:
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must be at least 3 x timeout_seconds ({self.timeout_seconds})"
            )
        return self


class Silence(_Strict):
    dag_id: str | None = None
    model: str | None = None
    kind: str | None = None
    until: datetime | None = None
    start: datetime | None = None
    end: datetime | None = None
    reason: str

    @model_validator(mode="after")
    def _well_formed(self) -> Silence:
        if not (self.dag_id or self.model or self.kind):
            raise ValueError(
                "a silence needs at least one of dag_id, model, kind (use maintenance_windows to silence everything)"
            )
        if self.until and (self.start or self.end):
            raise ValueError("use either until or start+end, not both")
        if bool(self.start) != bool(self.end):
            raise ValueError("start and end go together")
        _require_aware(self.until, self.start, self.end)
        if self.start and self.end and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def active_at(self, now: datetime) -> bool:
        if self.until:
            return now < self.until
        if self.start and self.end:
            return self.start <= now < self.end
        return True


class MaintenanceWindow(_Strict):
    start: datetime
    end: datetime
    reason: str

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindow:
        _require_aware(self.start, self.end)
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def active_at(self, now: datetime) -> bool:
        return self.start <= now < self.end


def _require_aware(*moments: datetime | None) -> None:
    for moment in moments:
        if moment is not None and moment.tzinfo is None:
            raise ValueError(f"{moment.isoformat()} has no timezone (write e.g. 2025-06-15T01:00:00+05:30)")


class AlertingConfig(_Strict):
    severities: list[str]
    alerts: Alerts
    routes: dict[str, list[Channel]]
    # The channels this deployment can deliver to (VYAPAR_ALERT_CHANNELS overrides, e.g. "email" for a compose
    # stack without Slack). A route is narrowed to these; a route left empty falls back to all of them, so an
    # alert is never dropped because its usual channel is not set up here.
    channels: list[Channel] = ["slack", "email"]
    slack: SlackConfig
    email: EmailConfig
    links: LinksConfig = LinksConfig()
    delivery: DeliveryConfig = DeliveryConfig()
    silences: list[Silence] = []
    maintenance_windows: list[MaintenanceWindow] = []
    source: str = Field(default="alerting.yaml", exclude=True)

    def severity_rank(self, severity: str) -> int:
        return self.severities.index(severity)

    def severity_of(self, kind: str) -> str:
        return getattr(self.alerts, kind).severity

    def runbook_url(self, kind: str) -> str:
        """The runbook section for an alert kind: `<runbook_base_url>#<kind-with-dashes>`."""
        base = self.links.runbook_base_url or self.links.airflow_base_url.rstrip("/") + RUNBOOKS_PATH
        return f"{base}#{kind.replace('_', '-')}"


DEFAULT_SLACK_CONN = "slack_alerts"
DEFAULT_SLACK_WEBHOOK_CONN = "slack_alerts_webhook"


def load_alerting_config(path: str | Path | None = None) -> AlertingConfig:
    """Read and validate the alerting file (default: VYAPAR_ALERTING_CONFIG or the alerting.yaml beside this module)."""
    path = Path(path or settings.alerting_config_path())
    name = path.name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AlertingConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise AlertingConfigError(f"{name}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise AlertingConfigError(f"{name}: expected a mapping at the top level")
    links = dict(raw.get("links") or {})
    links["airflow_base_url"] = settings.platform_base_url(links.get("airflow_base_url"))
    if settings.runbook_base_url():
        links["runbook_base_url"] = settings.runbook_base_url()
    raw["links"] = links
    transport = settings.slack_transport()
    if "webhook" in transport and "api" not in transport:
        # compose renders "api" when a bot token is set, "webhook" when only an incoming-webhook URL is
        slack = dict(raw.get("slack") or {})
        slack["webhook_connection_id"] = slack.get("webhook_connection_id") or DEFAULT_SLACK_WEBHOOK_CONN
        slack["connection_id"] = None
        raw["slack"] = slack
    if settings.alert_channels() is not None:
        # de-duplicated, order kept: compose may render "slack,slack,email" when a token and a webhook are set
        raw["channels"] = settings.alert_channels()
    try:
        config = AlertingConfig.model_validate({**raw, "source": name})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise AlertingConfigError(f"{name}: {_key_path(first['loc'])}: {_message(first)}") from None
    _check_references(config, name)
    return config


@functools.cache
def get_config() -> AlertingConfig:
    """The process-wide configuration, loaded once (call `get_config.cache_clear()` after changing the file)."""
    return load_alerting_config()


def _check_references(config: AlertingConfig, name: str) -> None:
    """Every severity a key mentions must be declared, and every routed channel must have a destination."""

    def fail(path: str, message: str) -> None:
        raise AlertingConfigError(f"{name}: {path}: {message}")

    known = config.severities
    if len(set(known)) != len(known) or not known:
        fail("severities", "must be a non-empty list of distinct names")
    allowed = f"(declared: {', '.join(known)})"
    for kind in ALERT_KINDS:
        if config.severity_of(kind) not in known:
            fail(f"alerts.{kind}.severity", f"unknown severity {config.severity_of(kind)!r} {allowed}")
    if not config.channels:
        fail("channels", "no channel left to deliver to (VYAPAR_ALERT_CHANNELS is empty?)")
    for severity, channels in config.routes.items():
        if severity not in known:
            fail(f"routes.{severity}", f"unknown severity {severity!r} {allowed}")
        if len(set(channels)) != len(channels):
            fail(f"routes.{severity}", "a channel is listed twice")
    for severity in known:
        if severity not in config.routes:
            fail("routes", f"no route for severity {severity!r}")
        if "slack" in config.routes[severity] and severity not in config.slack.channels:
            fail("slack.channels", f"no Slack channel for severity {severity!r}, which routes to slack")
        if "email" in config.routes[severity] and severity not in config.email.recipients:
            fail("email.recipients", f"no recipients for severity {severity!r}, which routes to email")
    for section, mapping in (("slack.channels", config.slack.channels), ("email.recipients", config.email.recipients)):
        for severity in mapping:
            if severity not in known:
                fail(f"{section}.{severity}", f"unknown severity {severity!r} {allowed}")
    for index, silence in enumerate(config.silences):
        if silence.kind and silence.kind not in (*ALERT_KINDS, RECOVERED):
            fail(f"silences[{index}].kind", f"unknown alert kind {silence.kind!r} (allowed: {', '.join(ALERT_KINDS)})")


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after", "function-before") or str(part).startswith("function-"):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "(top level)"


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = error["msg"]
    return message.removeprefix("Value error, ")
