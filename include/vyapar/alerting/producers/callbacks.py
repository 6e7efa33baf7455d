"""Airflow and Cosmos callbacks wired by the DAG factory onto every task and DAG: thin, and never failing a task.

Each builds `Alert`s and hands them over (`incidents.raise_alert` / `resolve`: stored, then delivered at once from
this process; the scheduler's sweeper retries). Every public callback swallows and logs its own errors.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from include.vyapar.alerting import lineage
from include.vyapar.alerting.alert import Alert, task_log_url
from include.vyapar.alerting.config import get_config
from include.vyapar.alerting.formatting import local_time
from include.vyapar.alerting.incidents import raise_alert, resolve
from include.vyapar.alerting.producers import watchdog
from include.vyapar.alerting.producers.dbt_outcome import SUCCEEDED, DbtOutcome, NodeResult, describe_age, read_outcome
from include.vyapar.alerting.store import AlertStore, get_store

log = logging.getLogger(__name__)
XCOM_KEY = "dbt_outcome"
ERROR_LINES = 30
DATA_AS_OF = "Data as of"
NEVER_BUILT = "no successful build yet"
RECENT_RESULTS = 50  # a node's newest results searched for its last success (a run records a few per node)
# The outcome of the current try of each task in this process (the failure callback runs in the same one).
_outcomes: dict[tuple[str, str, str, int], DbtOutcome] = {}


def never_fails(fn: Callable[..., Any]) -> Callable[..., Any]:
    """An alerting bug is logged, never raised into the task or the DAG run."""

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception:  # noqa: BLE001
            log.exception("alerting callback %s failed; the task is unaffected", fn.__name__)
            return None

    return guarded


# ---------------------------------------------------------------------------------------------- task facts
class TaskFacts:
    """What every alert about a task instance says: identity, dbt node, owner, try, log link."""

    def __init__(self, context: Any) -> None:
        ti, task = context["ti"], context["task"]
        self.context = context
        self.dag_id: str = ti.dag_id
        self.task_id: str = ti.task_id
        self.run_id: str = ti.run_id
        self.map_index: int = getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1
        self.try_number: int | None = getattr(ti, "try_number", None)
        self.max_tries: int | None = getattr(ti, "max_tries", None)
        node_config = (getattr(task, "extra_context", None) or {}).get("dbt_node_config") or {}
        self.node_id: str | None = node_config.get("unique_id")
        self.manifest = lineage.manifest()
        self.owner = self.manifest.owner_of(self.node_id, getattr(task, "owner", None))
        self.config = get_config()
        self.log_url = task_log_url(
            self.config.links.airflow_base_url, self.dag_id, self.run_id, self.task_id, self.try_number, self.map_index
        )
        self.is_freshness = type(task).__name__.startswith("DbtSource")
        self.is_test_task = type(task).__name__.startswith("DbtTest")

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.dag_id, self.task_id, self.run_id, self.map_index)

    @property
    def try_label(self) -> str:
        if self.try_number is None:
            return ""
        return f"{self.try_number} of {self.max_tries + 1}" if self.max_tries is not None else str(self.try_number)

    def name(self, node_id: str | None) -> str:
        return self.manifest.name(node_id) if node_id else self.task_id

    def alert(self, **fields: Any) -> Alert:
        facts = {"Try": self.try_label, **fields.pop("facts", {})}
        links = {"Task log": self.log_url, **fields.pop("links", {})}
        base: dict[str, Any] = dict(dag_id=self.dag_id, task_id=self.task_id, run_id=self.run_id, owner=self.owner)
        base.update(fields)
        return Alert(facts=facts, links=links, **base)

    def identity(self) -> watchdog.TaskIdentity:
        return watchdog.TaskIdentity(
            dag_id=self.dag_id, task_id=self.task_id, run_id=self.run_id, try_number=self.try_number,
            node_id=self.node_id, node_name=self.name(self.node_id), owner=self.owner, log_url=self.log_url,
            upstream_keys=tuple(self.manifest.upstream_keys(self.node_id)) if self.node_id else (),
        )  # fmt: skip


def _error_lines(text: str, limit: int = ERROR_LINES) -> str:
    lines = [line.rstrip() for line in str(text or "").strip().splitlines() if line.strip()]
    return "\n".join(lines[:limit])


# ---------------------------------------------------------------------------------------------- the watchdog
@never_fails
def start_task_watch(context: Any) -> None:
    """pre_execute of a dbt task (after the selection check): watch it for slowness and resource pressure."""
    facts = TaskFacts(context)
    store, config = get_store(), facts.config
    nodes: list[str] = []
    if facts.node_id and lineage.manifest().resource_type(facts.node_id) in lineage.BUILT:
        nodes = [facts.node_id, *facts.manifest.tests_built_with(facts.node_id)]
    budget = watchdog.slow_budget(store, nodes, config) if not facts.is_freshness else None
    if budget is None and not config.alerts.resources.metrics:
        return
    if budget is not None:
        log.info(
            "watchdog: %s usually takes %.1f s; a slow alert fires at %.1f s", facts.task_id, budget.expected, budget.threshold
        )
    watchdog.start(facts.key, watchdog.TaskWatch(facts.identity(), budget, config, store))


@never_fails
def stop_task_watch(context: Any, result: Any = None) -> None:
    """post_execute of a dbt task; the failure and retry callbacks stop it too."""
    watchdog.stop(TaskFacts(context).key)


# ---------------------------------------------------------------------------------------------- dbt results
@never_fails
def record_dbt_results(project_dir: str, context: Any = None, **_: Any) -> None:
    """Cosmos `callback`: runs after dbt, before Cosmos raises on a failed result (so on success and failure).

    Records every node result, feeds successful durations to the baselines, pushes the outcome to XCom for the
    failure callback, resolves the incidents of nodes that now succeed, and alerts test warnings and nodes that
    were slow on their own. Failures are alerted by `on_task_failure`, on the last try only.
    """
    if context is None:
        return
    facts = TaskFacts(context)
    outcome = read_outcome(project_dir, try_number=facts.try_number)
    if outcome is None:
        log.warning("no dbt artifacts in %s; nothing recorded", project_dir)
        return
    _outcomes[facts.key] = outcome
    try:
        context["ti"].xcom_push(key=XCOM_KEY, value=outcome.to_xcom())
    except Exception:  # noqa: BLE001 — the in-process copy still serves the failure callback
        log.warning("could not push %s to XCom", XCOM_KEY, exc_info=True)
    store, now = get_store(), time.time()
    for result in outcome.results:
        if result.succeeded and result.resource_type != "source":
            _check_node_speed(facts, result)
        store.record_node_result(
            result.node_id, result.resource_type, result.status, result.seconds, result.failures,
            dag_id=facts.dag_id, run_id=facts.run_id, task_id=facts.task_id, finished_at=now, try_number=facts.try_number,
        )  # fmt: skip
        if result.succeeded and result.resource_type != "source":
            store.record_duration(result.node_id, result.seconds, facts.run_id)
        if result.succeeded or (result.resource_type == "source" and result.warned):
            _resolve_node(facts, result)
        if result.warned and result.is_test:
            _alert_test_warning(facts, result)
    log.info(
        "dbt %s: %s", outcome.command,
        ", ".join(f"{facts.name(r.node_id)}={r.status}" for r in outcome.results) or "no nodes",
    )  # fmt: skip


def _check_node_speed(facts: TaskFacts, result: NodeResult) -> None:
    """After the run: a node over its own threshold is slow (a test alone can be); within it, `slow` recovers."""
    store, slow = get_store(), facts.config.alerts.slow
    baseline = store.baseline_for(result.node_id)
    if baseline is None:
        return
    threshold = watchdog.slow_threshold(baseline.median, slow)
    key = f"slow:{result.node_id}"
    name = facts.name(result.node_id)
    if result.seconds > threshold:
        if store.mark_slow_alerted(facts.run_id, result.node_id):
            raise_alert(
                facts.alert(
                    kind="slow",
                    subject=f"{facts.dag_id}: dbt {result.resource_type} {name} took {result.seconds:.1f} s "
                    f"(usually {baseline.median:.1f} s)",
                    summary=f"Over its slow threshold of {threshold:.1f} s ({slow.threshold_ratio:g} x baseline).",
                    facts={
                        "Baseline": f"{baseline.median:.1f} s (median of the last {baseline.samples} successful runs)",
                        "Took": f"{result.seconds:.1f} s", "Threshold": f"{threshold:.1f} s",
                    },
                    dedup_key=key, node_id=result.node_id, owner=facts.manifest.owner_of(result.node_id, facts.owner),
                ),  # fmt: skip
                facts.manifest.upstream_keys(result.node_id),
            )
    elif not store.was_slow_alerted(facts.run_id, result.node_id):
        resolve(
            key, f"{facts.dag_id}: dbt {name} is back to normal speed ({result.seconds:.1f} s, baseline {baseline.median:.1f} s)",
            dag_id=facts.dag_id, task_id=facts.task_id, run_id=facts.run_id, node_id=result.node_id,
        )  # fmt: skip


def _resolve_node(facts: TaskFacts, result: NodeResult) -> None:
    name = facts.name(result.node_id)
    key = lineage.incident_key(result.node_id, result.resource_type)
    what = {"source": "is fresh again", "test": "passes again", "unit_test": "passes again"}.get(
        result.resource_type, "built successfully"
    )
    fields = dict(dag_id=facts.dag_id, task_id=facts.task_id, run_id=facts.run_id, node_id=result.node_id)
    resolve(key, f"{facts.dag_id}: dbt {result.resource_type} {name} {what}", facts={"Try": facts.try_label}, **fields)
    if result.is_test:
        resolve(f"{key}:warn", f"{facts.dag_id}: dbt test {name} no longer warns", **fields)


def _alert_test_warning(facts: TaskFacts, result: NodeResult) -> None:
    name = facts.name(result.node_id)
    count = f"{result.failures} row(s)" if result.failures is not None else "some rows"
    raise_alert(
        facts.alert(
            kind="data_quality", severity="low",
            subject=f"dbt test warning in {facts.dag_id}: {name} ({count})",
            summary=f"The warn-severity test {name} found {count}; the task succeeded. Look before it becomes an error.",
            facts={"Test": result.node_id, "Failing rows": result.failures, "Tested": facts.manifest.tested_node(result.node_id)},
            error=_error_lines(result.message), dedup_key=f"data_quality:{result.node_id}:warn",
            node_id=result.node_id, owner=facts.manifest.owner_of(result.node_id, facts.owner),
        ),  # fmt: skip
        facts.manifest.upstream_keys(result.node_id),
    )


# ---------------------------------------------------------------------------------------------- data as of
# A failed build leaves a table as it was (dbt-duckdb builds into a temporary relation and renames it in the same
# transaction; a delete+insert rolls back whole): readers keep the last good build, which the alerts name from the
# store's own record of node results (the same in a task, the dag-processor's DAG callbacks and the listener).
def _last_good_build(store: AlertStore, node_id: str) -> tuple[float | None, str | None]:
    """When `node_id` last built successfully, and in which run; (None, None) when it never has."""
    for row in store.node_results_for(node_id, limit=RECENT_RESULTS):
        if row["status"] in SUCCEEDED:
            return row["finished_at"], row["run_id"]
    return store.last_success(node_id), None


def data_as_of(store: AlertStore, node_id: str) -> str:
    """The time readers of a failed model's table see its data from: its last successful build, in local time."""
    finished_at, _ = _last_good_build(store, node_id)
    return local_time(finished_at) if finished_at else NEVER_BUILT


def layer_data_as_of(store: AlertStore, task_ids: list[str], run_id: str) -> str:
    """A failed layer run: the oldest last good build among its models (by task id) that this run did not rebuild."""
    dbt_task_ids = [task_id for task_id in task_ids if task_id.startswith("dbt.")]
    if not dbt_task_ids:
        return ""
    manifest = lineage.manifest()  # task ids, not operators: a DAG callback may get a serialized DAG (`dags test`)
    nodes = dict.fromkeys(
        node_id for task_id in dbt_task_ids
        if (node_id := lineage.node_for_task(task_id, manifest)) and manifest.resource_type(node_id) in lineage.BUILT
    )  # fmt: skip
    stale: dict[str, float | None] = {}
    for node_id in nodes:
        finished_at, good_run = _last_good_build(store, node_id)
        if good_run != run_id:
            stale[manifest.name(node_id)] = finished_at
    if not stale:
        return "this run (every model of it built)" if nodes else ""
    never = sorted(name for name, at in stale.items() if not at)
    if never:
        return f"{NEVER_BUILT} ({', '.join(never)})"
    oldest = min(at for at in stale.values() if at)
    return f"{local_time(oldest)} (the last good build of {', '.join(sorted(stale))}; not rebuilt by this run)"


# ---------------------------------------------------------------------------------------------- failure
def _outcome_of(facts: TaskFacts) -> DbtOutcome | None:
    outcome = _outcomes.pop(facts.key, None)
    if outcome is None:
        try:  # e.g. the callback runs in another process (the task process was killed)
            outcome = DbtOutcome.from_xcom(
                facts.context["ti"].xcom_pull(task_ids=facts.task_id, key=XCOM_KEY, map_indexes=facts.map_index)
            )
        except Exception:  # noqa: BLE001
            outcome = None
    if outcome is not None and outcome.try_number not in (None, facts.try_number):
        return None  # an earlier try's results
    return outcome


def failure_alert(facts: TaskFacts, outcome: DbtOutcome | None, exception: BaseException | None) -> tuple[Alert, list[str]]:
    """The one alert for a task that failed on its last try, and the upstream keys it may fold into."""
    manifest, config = facts.manifest, facts.config
    exception_text = f"{type(exception).__name__}: {exception}" if exception is not None else ""
    if outcome is not None and facts.is_freshness and outcome.stale_sources:
        stale = outcome.stale_sources[0]
        limit = stale.error_after_seconds or config.alerts.stale_data.max_age_minutes * 60
        name = facts.name(stale.node_id)
        if stale.age_seconds is not None:
            subject = f"Stale data: source {name} last landed {describe_age(stale.age_seconds)} ago (limit {describe_age(limit)})"
        else:
            subject = f"Stale data: freshness of source {name} could not be checked"
        alert = facts.alert(
            kind="stale_data", subject=subject,
            summary=f"dbt source freshness failed in {facts.dag_id}; models built from {name} are serving old data.",
            facts={"Source": stale.node_id, "Age": describe_age(stale.age_seconds), "Limit": describe_age(limit)},
            error=_error_lines(stale.message or exception_text), dedup_key=f"stale_data:{stale.node_id}",
            node_id=stale.node_id, owner=manifest.owner_of(stale.node_id, facts.owner),
        )  # fmt: skip
        return alert, manifest.upstream_keys(stale.node_id)
    if outcome is not None and outcome.errored_builds:
        broken = outcome.errored_builds[0]
        name = facts.name(broken.node_id)
        downstream = manifest.downstream_models(broken.node_id)
        as_of = data_as_of(get_store(), broken.node_id)
        alert = facts.alert(
            kind="failed_run",
            subject=f"{facts.dag_id}: dbt {broken.resource_type} {name} failed",
            summary=f"{name} failed on its last try ({facts.try_label}); its table still serves the data as of {as_of}, "
            f"unchanged. {len(downstream)} downstream model(s) are now stale.",
            facts={
                "Status": broken.status, DATA_AS_OF: as_of,
                "Downstream models": ", ".join(manifest.name(d) for d in downstream[:15]),
            },
            error=_error_lines("\n".join(r.message for r in outcome.errored_builds) or exception_text),
            dedup_key=f"failed_run:{broken.node_id}", node_id=broken.node_id,
            owner=manifest.owner_of(broken.node_id, facts.owner),
        )  # fmt: skip
        return alert, manifest.upstream_keys(broken.node_id)
    if outcome is not None and outcome.failed_tests:
        tests = sorted(outcome.failed_tests, key=lambda r: r.node_id)
        listing = "; ".join(
            f"{facts.name(t.node_id)} ({t.failures if t.failures is not None else t.status} failing rows)"
            if t.status == "fail" else f"{facts.name(t.node_id)} ({t.status})" for t in tests
        )  # fmt: skip
        first = tests[0]
        tested = manifest.tested_node(first.node_id) or facts.node_id
        alert = facts.alert(
            kind="data_quality",
            subject=f"{facts.dag_id}: dbt test{'s' if len(tests) > 1 else ''} failed on {facts.name(tested)}: {listing}",
            summary=f"{len(tests)} dbt test(s) failed; the data was built but does not meet its checks.",
            facts={"Failing tests": listing, "Tested": tested},
            error=_error_lines("\n".join(t.message for t in tests)), dedup_key=f"data_quality:{first.node_id}",
            node_id=first.node_id, owner=manifest.owner_of(first.node_id, facts.owner),
        )  # fmt: skip
        return alert, manifest.upstream_keys(first.node_id)
    # No dbt verdict: killed, timed out, a Python error, or not a dbt task.
    key = lineage.incident_key(facts.node_id) if facts.node_id else ""
    if facts.is_freshness and facts.node_id:
        key = f"stale_data:{facts.node_id}"
    key = key or f"failed_run:{facts.dag_id}.{facts.task_id}"
    what = f"dbt {facts.name(facts.node_id)}" if facts.node_id else f"task {facts.task_id}"
    builds = bool(facts.node_id) and not (facts.is_freshness or facts.is_test_task)
    builds = builds and manifest.resource_type(facts.node_id) in lineage.BUILT
    as_of = {DATA_AS_OF: data_as_of(get_store(), facts.node_id)} if builds else {}
    alert = facts.alert(
        kind=key.split(":", 1)[0],
        subject=f"{facts.dag_id}: {what} failed" + (f" ({type(exception).__name__})" if exception else ""),
        summary=f"The task failed on its last try ({facts.try_label}) without a dbt result: killed, timed out or an error "
        "outside dbt." + (f" Its table still serves the data as of {as_of[DATA_AS_OF]}." if as_of else ""),
        facts=as_of,
        error=_error_lines(exception_text or "no exception recorded"), dedup_key=key, node_id=facts.node_id,
    )  # fmt: skip
    return alert, manifest.upstream_keys(facts.node_id) if facts.node_id else []


@never_fails
def on_task_failure(context: Any) -> None:
    """on_failure_callback (Airflow calls it after the last try only): one alert for the failed task."""
    facts = TaskFacts(context)
    watchdog.stop(facts.key)
    alert, upstream = failure_alert(facts, _outcome_of(facts), context.get("exception"))
    result = raise_alert(alert, upstream)
    get_store().record_task_alert(facts.dag_id, facts.run_id, facts.task_id, result, alert.dedup_key)


@never_fails
def on_task_retry(context: Any) -> None:
    """on_retry_callback: a try failed and another is coming, which is not an incident (yet)."""
    facts = TaskFacts(context)
    watchdog.stop(facts.key)
    _outcomes.pop(facts.key, None)
    log.info("try %s of %s failed; no alert unless the last try fails too", facts.try_label, facts.task_id)


@never_fails
def on_task_success(context: Any) -> None:
    """on_success_callback: a non-dbt task that succeeds resolves its own failed_run incident."""
    facts = TaskFacts(context)
    watchdog.stop(facts.key)
    _outcomes.pop(facts.key, None)
    fields = dict(dag_id=facts.dag_id, task_id=facts.task_id, run_id=facts.run_id)
    resolve(f"failed_run:{facts.dag_id}.{facts.task_id}", f"{facts.dag_id}: task {facts.task_id} succeeded", **fields)
    if facts.node_id and not facts.is_test_task:  # belt and braces when dbt left no artifacts to read
        key = f"stale_data:{facts.node_id}" if facts.is_freshness else lineage.incident_key(facts.node_id)
        resolve(key, f"{facts.dag_id}: dbt {facts.name(facts.node_id)} succeeded", node_id=facts.node_id, **fields)


# ---------------------------------------------------------------------------------------------- DAG runs
def _dag_run_id(context: Any) -> str:
    run = context.get("dag_run")
    return str(context.get("run_id") or getattr(run, "run_id", ""))


@never_fails
def on_dag_failure(context: Any) -> None:
    """DAG on_failure_callback: `failed_run:dag:<dag_id>`, folded into the failed tasks' incidents."""
    dag = context["dag"]
    run_id = _dag_run_id(context)
    store = get_store()
    keys = store.task_alert_keys(dag.dag_id, run_id)
    config = get_config()
    base = config.links.airflow_base_url.rstrip("/")
    as_of = layer_data_as_of(store, [task.task_id for task in getattr(dag, "tasks", ())], run_id)
    alert = Alert(
        kind="failed_run",
        subject=f"{dag.dag_id}: DAG run failed",
        summary=f"Run {run_id} ended failed ({context.get('reason') or 'task failure'})."
        + (f" Its tables still serve the data as of {as_of}." if as_of else ""),
        facts={"Incidents of failed tasks": ", ".join(keys) or "none recorded", DATA_AS_OF: as_of},
        links={"DAG run": f"{base}/dags/{dag.dag_id}/runs/{run_id}"},
        dedup_key=f"failed_run:dag:{dag.dag_id}", dag_id=dag.dag_id, run_id=run_id,
        owner=(getattr(dag, "default_args", None) or {}).get("owner"),
        occurred_at=datetime.now(UTC),
    )  # fmt: skip
    raise_alert(alert, keys)


@never_fails
def on_dag_success(context: Any) -> None:
    dag = context["dag"]
    resolve(f"failed_run:dag:{dag.dag_id}", f"{dag.dag_id}: DAG run succeeded", dag_id=dag.dag_id, run_id=_dag_run_id(context))
