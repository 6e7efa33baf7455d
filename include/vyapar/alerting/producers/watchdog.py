"""The running-task watchdog: one thread per dbt task that alerts while the task still runs.

It raises `slow` once the task passes `threshold_ratio` x the baselines of the nodes it builds, and samples
memory, disk (the warehouse volume) and sustained CPU for `resources` alerts (and their recoveries).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import psutil

from include.vyapar import settings
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import AlertingConfig, SlowAlert
from include.vyapar.alerting.incidents import raise_alert, resolve
from include.vyapar.alerting.store import AlertStore

log = logging.getLogger(__name__)
TICK_SECONDS = 0.5


@dataclass(frozen=True)
class SlowBudget:
    """How long a task's nodes usually take (sum of baselines) and when it counts as slow."""

    expected: float
    threshold: float
    nodes: tuple[str, ...]
    samples: int


def slow_threshold(expected: float, slow: SlowAlert, startup: float = 0.0) -> float:
    """Slow means over threshold_ratio x expected AND over expected + min_excess_seconds (plus dbt start-up)."""
    return max(slow.threshold_ratio * expected, expected + slow.min_excess_seconds) + startup


def slow_budget(store: AlertStore, node_ids: list[str], config: AlertingConfig) -> SlowBudget | None:
    """The budget of a task running `node_ids` (the model first); None when the model has no baseline yet."""
    if not node_ids:
        return None
    first = store.baseline_for(node_ids[0])
    if first is None:
        return None
    expected, counted = first.median, [node_ids[0]]
    for node_id in node_ids[1:]:
        baseline = store.baseline_for(node_id)
        if baseline is not None:  # a test without history adds nothing rather than blocking the watch
            expected += baseline.median
            counted.append(node_id)
    slow = config.alerts.slow
    return SlowBudget(expected, slow_threshold(expected, slow, slow.startup_allowance_seconds), tuple(counted), first.samples)


@dataclass(frozen=True)
class TaskIdentity:
    dag_id: str
    task_id: str
    run_id: str
    try_number: int | None
    node_id: str | None
    node_name: str
    owner: str | None
    log_url: str
    upstream_keys: tuple[str, ...] = ()


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


class TaskWatch(threading.Thread):
    """Watches one running task until `stop()`; never raises (an alerting bug must not touch the task)."""

    def __init__(
        self, task: TaskIdentity, budget: SlowBudget | None, config: AlertingConfig, store: AlertStore
    ) -> None:
        super().__init__(name=f"vyapar-watch-{task.task_id}", daemon=True)
        self.task, self.budget, self.config, self.store = task, budget, config, store
        self.started = time.monotonic()
        self.slow_alerted = False
        self._stopping = threading.Event()
        self._above: set[str] = set()
        self._cpu: deque[tuple[float, float]] = deque()
        self.host = socket.gethostname()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def run(self) -> None:
        resources = self.config.alerts.resources
        next_sample = time.monotonic()
        if resources.metrics and "cpu" in resources.metrics:
            psutil.cpu_percent(interval=None)  # primes the counter: the next call measures since now
        while not self._stopping.wait(TICK_SECONDS):
            try:
                if self.budget is not None and not self.slow_alerted and self.elapsed > self.budget.threshold:
                    self._alert_slow()
                if resources.metrics and time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + resources.sample_seconds
                    self._sample()
            except Exception:  # noqa: BLE001
                log.exception("task watchdog check failed (the task is unaffected)")

    # ------------------------------------------------------------------ slow
    def _alert_slow(self) -> None:
        self.slow_alerted = True  # at most once per watch, whatever happens next
        task, budget = self.task, self.budget
        assert budget is not None
        if not task.node_id or not self.store.mark_slow_alerted(task.run_id, task.node_id):
            return
        slow = self.config.alerts.slow
        elapsed = self.elapsed
        alert = Alert(
            kind="slow",
            subject=f"{task.dag_id}: dbt {task.node_name} is still running after {elapsed:.0f} s "
            f"(usually {budget.expected:.1f} s)",
            summary=(
                f"{task.task_id} has run {elapsed:.0f} s, past its slow threshold of {budget.threshold:.0f} s "
                f"({slow.threshold_ratio:g} x the {budget.expected:.1f} s baseline of the {len(budget.nodes)} "
                f"node(s) it builds, plus {slow.startup_allowance_seconds:g} s for dbt to start). It is still running."
            ),
            facts={
                "Baseline": f"{budget.expected:.1f} s (median of the last {budget.samples} successful runs)",
                "Elapsed": f"{elapsed:.1f} s and counting",
                "Threshold": f"{budget.threshold:.1f} s",
                "Nodes timed": ", ".join(budget.nodes),
                "Try": task.try_number,
            },
            links={"Task log": task.log_url},
            dedup_key=f"slow:{task.node_id}",
            dag_id=task.dag_id, task_id=task.task_id, run_id=task.run_id, node_id=task.node_id, owner=task.owner,
        )  # fmt: skip
        raise_alert(alert, task.upstream_keys)

    # ------------------------------------------------------------------ resources
    def _sample(self) -> None:
        resources = self.config.alerts.resources
        now = time.monotonic()
        values: dict[str, tuple[float, str]] = {}
        if "memory" in resources.metrics:
            values["memory"] = (psutil.virtual_memory().percent, "memory in use on this worker")
        if "disk" in resources.metrics:
            volume = _existing(settings.DUCKDB_PATH.parent)
            values["disk"] = (psutil.disk_usage(str(volume)).percent, f"disk in use on the warehouse volume ({volume})")
        if "cpu" in resources.metrics:
            self._cpu.append((now, psutil.cpu_percent(interval=None)))
            while self._cpu and now - self._cpu[0][0] > resources.cpu_window_seconds:
                self._cpu.popleft()
            covered = now - self.started >= resources.cpu_window_seconds
            if covered and self._cpu:
                mean = sum(v for _, v in self._cpu) / len(self._cpu)
                values["cpu"] = (mean, f"CPU busy, mean over {resources.cpu_window_seconds:g} s")
        for metric, (value, what) in values.items():
            self._judge(metric, value, what)

    def _judge(self, metric: str, value: float, what: str) -> None:
        threshold = self.config.alerts.resources.threshold_percent
        key = f"resources:{metric}:{self.host}"
        task = self.task
        if value >= threshold:
            if metric in self._above:
                return
            self._above.add(metric)
            raise_alert(
                Alert(
                    kind="resources",
                    subject=f"{metric} at {value:.0f}% on {self.host} (threshold {threshold:g}%)",
                    summary=f"{value:.1f}% {what}, over the {threshold:g}% threshold, while {task.dag_id}.{task.task_id} ran.",
                    facts={"Metric": metric, "Value": f"{value:.1f}%", "Threshold": f"{threshold:g}%", "Host": self.host},
                    links={"Task log": task.log_url},
                    dedup_key=key, dag_id=task.dag_id, task_id=task.task_id, run_id=task.run_id, owner=task.owner,
                )  # fmt: skip
            )
        else:
            self._above.discard(metric)
            resolve(
                key,
                f"{metric} back to {value:.0f}% on {self.host} (threshold {threshold:g}%)",
                facts={"Metric": metric, "Value": f"{value:.1f}%", "Host": self.host},
            )


_watches: dict[tuple[str, str, str, int], TaskWatch] = {}
_lock = threading.Lock()


def start(key: tuple[str, str, str, int], watch: TaskWatch) -> None:
    with _lock:
        previous = _watches.pop(key, None)
        if previous is not None:
            previous.stop()
        _watches[key] = watch
    watch.start()


def stop(key: tuple[str, str, str, int]) -> TaskWatch | None:
    with _lock:
        watch = _watches.pop(key, None)
    if watch is not None:
        watch.stop()
    return watch
