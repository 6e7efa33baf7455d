"""What a dbt invocation did, node by node, read from its own artifacts (run_results.json, sources.json)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# dbt statuses: models success | error | skipped; tests pass | fail | warn | error | skipped;
# source freshness pass | warn | error | runtime error.
SUCCEEDED = frozenset({"success", "pass"})
FAILED = frozenset({"error", "fail", "runtime error"})
WARNED = frozenset({"warn"})
MESSAGE_CHARS = 2_000
NODE_TYPES = ("model", "seed", "snapshot", "test", "unit_test", "source")


@dataclass(frozen=True)
class NodeResult:
    """One node's result in one dbt invocation."""

    node_id: str
    resource_type: str
    status: str
    seconds: float
    failures: int | None = None
    message: str = ""
    age_seconds: float | None = None  # source freshness: how old the newest row is
    error_after_seconds: float | None = None  # source freshness: the error limit

    @property
    def succeeded(self) -> bool:
        return self.status in SUCCEEDED

    @property
    def failed(self) -> bool:
        return self.status in FAILED

    @property
    def warned(self) -> bool:
        return self.status in WARNED

    @property
    def is_test(self) -> bool:
        return self.resource_type in ("test", "unit_test")


@dataclass(frozen=True)
class DbtOutcome:
    """Every node result of one dbt invocation (one task try), as pushed to XCom under `dbt_outcome`."""

    command: str  # build | run | test | freshness | ...
    results: tuple[NodeResult, ...] = ()
    try_number: int | None = None
    elapsed: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> list[NodeResult]:
        return [r for r in self.results if r.failed]

    @property
    def errored_builds(self) -> list[NodeResult]:
        """Models, seeds or snapshots that errored (a failed run, not a data-quality finding)."""
        return [r for r in self.failed if r.resource_type in ("model", "seed", "snapshot")]

    @property
    def failed_tests(self) -> list[NodeResult]:
        return [r for r in self.failed if r.is_test]

    @property
    def stale_sources(self) -> list[NodeResult]:
        return [r for r in self.failed if r.resource_type == "source"]

    @property
    def warnings(self) -> list[NodeResult]:
        return [r for r in self.results if r.warned and r.is_test]

    def to_xcom(self) -> dict[str, Any]:
        record = asdict(self)
        record["results"] = [asdict(r) for r in self.results]
        return record

    @classmethod
    def from_xcom(cls, record: dict[str, Any] | None) -> DbtOutcome | None:
        if not record or "command" not in record:
            return None
        results = tuple(NodeResult(**r) for r in record.get("results") or [])
        return cls(
            command=record["command"], results=results, try_number=record.get("try_number"),
            elapsed=record.get("elapsed"), extra=dict(record.get("extra") or {}),
        )  # fmt: skip


_PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _limit_seconds(criteria: dict[str, Any] | None) -> float | None:
    limit = (criteria or {}).get("error_after") or {}
    if limit.get("count") and limit.get("period") in _PERIOD_SECONDS:
        return float(limit["count"]) * _PERIOD_SECONDS[limit["period"]]
    return None


def read_outcome(project_dir: str | Path, try_number: int | None = None) -> DbtOutcome | None:
    """Read target/run_results.json (build, run, test) or target/sources.json (source freshness)."""
    target = Path(project_dir) / "target"
    results: list[NodeResult] = []
    command, elapsed = "", None
    sources = target / "sources.json"
    run_results = target / "run_results.json"
    if sources.is_file():
        raw = json.loads(sources.read_text(encoding="utf-8"))
        command, elapsed = "freshness", raw.get("elapsed_time")
        for item in raw.get("results", []):
            results.append(
                NodeResult(
                    node_id=item["unique_id"], resource_type="source", status=str(item.get("status", "")),
                    seconds=float(item.get("execution_time") or 0.0),
                    message=str(item.get("error") or "")[:MESSAGE_CHARS],
                    age_seconds=item.get("max_loaded_at_time_ago_in_s"),
                    error_after_seconds=_limit_seconds(item.get("criteria")),
                )
            )  # fmt: skip
    elif run_results.is_file():
        raw = json.loads(run_results.read_text(encoding="utf-8"))
        command, elapsed = str((raw.get("args") or {}).get("which") or ""), raw.get("elapsed_time")
        for item in raw.get("results", []):
            unique_id = item.get("unique_id") or ""
            resource_type = unique_id.split(".", 1)[0]
            if resource_type not in NODE_TYPES:
                continue  # on-run-end hooks and other operations
            failures = item.get("failures")
            results.append(
                NodeResult(
                    node_id=unique_id, resource_type=resource_type, status=str(item.get("status", "")),
                    seconds=float(item.get("execution_time") or 0.0),
                    failures=int(failures) if failures is not None else None,
                    message=str(item.get("message") or "")[:MESSAGE_CHARS],
                )
            )  # fmt: skip
    else:
        return None
    return DbtOutcome(command=command, results=tuple(results), try_number=try_number, elapsed=elapsed)


def describe_age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes = seconds / 60
    return f"{minutes / 60:.1f} h" if minutes >= 90 else f"{minutes:.0f} min"
