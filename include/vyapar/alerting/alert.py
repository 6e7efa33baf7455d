"""An alert is data: what happened (kind, severity, subject, facts), where to look (links), and its incident key."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote


@dataclass(frozen=True)
class Alert:
    """One alert, built by a callback or watcher and handed to `enqueue`.

    `severity` defaults to the kind's severity in alerting.yaml; `dedup_key` defaults to kind + DAG/task/model, so
    the same open incident is alerted once. `recovery_of` names the dedup_key this alert resolves. `facts` and
    `links` keep their order (label -> value / label -> URL); `error` is free text and may be huge or hostile.
    """

    kind: str
    subject: str
    severity: str | None = None
    summary: str = ""
    facts: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    error: str = ""
    dedup_key: str = ""
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    node_id: str | None = None
    owner: str | None = None
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    recovery_of: str | None = None
    affected: Sequence[str] = ()

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "subject", " ".join(str(self.subject).split()))  # one line, whatever came in
        set_(self, "facts", {str(k): "" if v is None else str(v) for k, v in dict(self.facts).items()})
        set_(self, "links", {str(k): str(v) for k, v in dict(self.links).items() if v})
        set_(self, "affected", tuple(str(name) for name in self.affected))
        set_(self, "error", "" if self.error is None else str(self.error))
        occurred = self.occurred_at
        set_(self, "occurred_at", occurred.replace(tzinfo=UTC) if occurred.tzinfo is None else occurred.astimezone(UTC))
        if not self.dedup_key:
            parts = [self.kind, self.dag_id, self.task_id, self.node_id]
            set_(
                self, "dedup_key", ":".join(p for p in parts if p) if any(parts[1:]) else f"{self.kind}:{self.subject}"
            )

    @property
    def is_recovery(self) -> bool:
        return self.recovery_of is not None

    @property
    def display_name(self) -> str:
        """How this alert is named in an incident's list of affected downstream work."""
        if self.node_id:
            return self.node_id
        if self.dag_id and self.task_id:
            return f"{self.dag_id}.{self.task_id}"
        return self.dag_id or self.subject

    def replace(self, **changes: Any) -> Alert:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        record = dataclasses.asdict(self)
        record["occurred_at"] = self.occurred_at.isoformat()
        record["facts"] = list(self.facts.items())  # a list keeps the order through any JSON store
        record["links"] = list(self.links.items())
        record["affected"] = list(self.affected)
        return json.dumps(record, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Alert:
        record = json.loads(text)
        record["occurred_at"] = datetime.fromisoformat(record["occurred_at"])
        record["facts"] = dict(record["facts"])
        record["links"] = dict(record["links"])
        return cls(**record)


def task_log_url(
    base: str, dag_id: str, run_id: str, task_id: str, try_number: int | None = None, map_index: int | None = None
) -> str:
    """The task instance's log page in the Airflow 3 UI (the same shape as Airflow's own `TaskInstance.log_url`).

    `{base}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}[/mapped/{map_index}][?try_number=N]`
    """
    url = f"{base.rstrip('/')}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}/tasks/{quote(task_id, safe='')}"
    if map_index is not None and map_index >= 0:
        url += f"/mapped/{map_index}"
    if try_number:
        url += f"?try_number={try_number}"
    return url
