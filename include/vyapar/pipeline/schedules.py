"""Loads and validates schedules.yaml, the one declaration of every VyaparBazaar DAG."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from include.vyapar import settings

SCHEDULES_PATH = settings.SCHEDULES_FILE

_ENTRY_KEYS = {"name", "cron", "select", "owner", "priority", "tags", "doc", "lands_raw_batch", "snapshot_before"}
_WATCHER_KEYS = {"name", "cron", "run", "owner", "tags", "doc"}
_DEFAULT_KEYS = {"owner", "retries", "retry_delay_seconds", "max_retry_delay_seconds", "execution_timeout_minutes"}


class ScheduleError(ValueError):
    """schedules.yaml is malformed; the message names the entry and key."""


@dataclass(frozen=True)
class Defaults:
    owner: str = "data-platform"
    retries: int = 2
    retry_delay_seconds: int = 60
    max_retry_delay_seconds: int = 900
    execution_timeout_minutes: int = 60


@dataclass(frozen=True)
class PipelineSchedule:
    """One DAG: a dbt selection run on a cron in the declaration's time zone."""

    name: str
    kind: str  # "layer" or "business"
    cron: str
    select: tuple[str, ...]
    owner: str
    timezone: str
    doc: str = ""
    tags: tuple[str, ...] = ()
    priority: str = "medium"
    lands_raw_batch: bool = False
    snapshot_before: bool = False  # snapshot the warehouse before this DAG's dbt (include/vyapar/data/snapshots.py)
    run: str = ""  # watchers: "package.module:function" the DAG's one task calls

    @property
    def dag_id(self) -> str:
        return f"vyapar_{self.name}"


@dataclass(frozen=True)
class Schedules:
    timezone: str
    defaults: Defaults
    layers: tuple[PipelineSchedule, ...]
    business: tuple[PipelineSchedule, ...]
    watchers: tuple[PipelineSchedule, ...] = ()
    all: tuple[PipelineSchedule, ...] = field(init=False)  # the dbt DAGs: layers and business

    def __post_init__(self) -> None:
        object.__setattr__(self, "all", self.layers + self.business)

    def by_name(self, name: str) -> PipelineSchedule:
        for schedule in self.all:
            if schedule.name == name:
                return schedule
        raise KeyError(name)


def _entry(raw: object, kind: str, index: int, timezone: str, defaults: Defaults) -> PipelineSchedule:
    where = f"{kind}[{index}]"
    if not isinstance(raw, dict):
        raise ScheduleError(f"{where}: expected a mapping, got {type(raw).__name__}")
    allowed = _WATCHER_KEYS if kind == "watchers" else _ENTRY_KEYS
    unknown = set(raw) - allowed
    if unknown:
        raise ScheduleError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    if kind == "watchers":
        return _watcher(raw, where, timezone, defaults)
    for key in ("name", "cron", "select"):
        if key not in raw:
            raise ScheduleError(f"{where}: missing required key '{key}'")
    name = raw["name"]
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        raise ScheduleError(f"{where}.name: {name!r} must be letters, digits and underscores")
    where = f"{kind} '{name}'"
    cron = raw["cron"]
    if not isinstance(cron, str) or len(cron.split()) != 5:
        raise ScheduleError(f"{where}.cron: {cron!r} is not a five-field cron expression")
    select = raw["select"]
    if not isinstance(select, list) or not select or not all(isinstance(s, str) and s for s in select):
        raise ScheduleError(f"{where}.select: must be a non-empty list of dbt selectors")
    tags = raw.get("tags", [])
    if not isinstance(tags, list):
        raise ScheduleError(f"{where}.tags: must be a list")
    return PipelineSchedule(
        name=name,
        kind=kind.rstrip("s") if kind == "layers" else kind,
        cron=cron,
        select=tuple(select),
        owner=str(raw.get("owner", defaults.owner)),
        timezone=timezone,
        doc=str(raw.get("doc", "")),
        tags=(kind.rstrip("s") if kind == "layers" else kind, *map(str, tags)),
        priority=str(raw.get("priority", "medium")),
        lands_raw_batch=bool(raw.get("lands_raw_batch", False)),
        snapshot_before=bool(raw.get("snapshot_before", False)),
    )


def _watcher(raw: dict, where: str, timezone: str, defaults: Defaults) -> PipelineSchedule:
    for key in ("name", "cron", "run"):
        if key not in raw:
            raise ScheduleError(f"{where}: missing required key '{key}'")
    run = raw["run"]
    if not isinstance(run, str) or ":" not in run:
        raise ScheduleError(f"{where}.run: {run!r} must be 'package.module:function'")
    if not isinstance(raw["cron"], str) or len(raw["cron"].split()) != 5:
        raise ScheduleError(f"{where}.cron: {raw['cron']!r} is not a five-field cron expression")
    return PipelineSchedule(
        name=str(raw["name"]), kind="watcher", cron=raw["cron"], select=(), owner=str(raw.get("owner", defaults.owner)),
        timezone=timezone, doc=str(raw.get("doc", "")), tags=("watcher", *map(str, raw.get("tags", []))), run=run,
    )  # fmt: skip


def load_schedules(path: Path | str = SCHEDULES_PATH) -> Schedules:
    """Parse and validate the declaration; raises ScheduleError naming the bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ScheduleError(f"cannot read schedules file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ScheduleError(f"{path}: expected a mapping at the top level")
    timezone = raw.get("timezone")
    if not isinstance(timezone, str):
        raise ScheduleError(f"{path}: 'timezone' is required (e.g. Asia/Kolkata)")
    raw_defaults = raw.get("defaults") or {}
    unknown = set(raw_defaults) - _DEFAULT_KEYS
    if unknown:
        raise ScheduleError(f"defaults: unknown key(s) {sorted(unknown)}; allowed: {sorted(_DEFAULT_KEYS)}")
    defaults = Defaults(**raw_defaults)
    if defaults.retries < 2:
        raise ScheduleError("defaults.retries: must be at least 2 (transient failures are retried)")
    groups = {}
    for kind in ("layers", "business", "watchers"):
        entries = raw.get(kind) or []
        if not isinstance(entries, list):
            raise ScheduleError(f"{kind}: expected a list")
        groups[kind] = tuple(_entry(e, kind, i, timezone, defaults) for i, e in enumerate(entries))
    names = [s.name for s in groups["layers"] + groups["business"] + groups["watchers"]]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ScheduleError(f"duplicate schedule name(s): {duplicates}")
    return Schedules(
        timezone=timezone, defaults=defaults, layers=groups["layers"], business=groups["business"],
        watchers=groups["watchers"],
    )  # fmt: skip
