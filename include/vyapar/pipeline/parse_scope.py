"""Which of our DAGs a parse of a DAG file needs to build.

Building every DAG (twelve Cosmos task groups) is the cost of a parse. Two kinds of parse need only some:
- a task process parses the file for its own DAG (Airflow's parsing context names it);
- the dag-processor parses the file to run callbacks: every task ended in the triggerer (each watcher sensor)
  sends one, success included, which Airflow 3 then drops ("not a failure callback"). Measured at 100k events:
  27 such parses of the whole file in one daily build, 21 CPU seconds on a 2-core machine that was running dbt.
  Airflow gives such a parse no parsing context; its callback requests are read from the dag-processor's parse
  call (`airflow.dag_processing.processor._parse_file(msg, ...)`) on the stack.
Anything else (the dag-processor's regular parse, `airflow dags list`, a test's DagBag) builds them all; so does a
parse whose callers look different (another Airflow version): the fallback is the whole file, never less.
"""

from __future__ import annotations

import sys

from airflow.sdk import get_parsing_context

_PROCESSOR_MODULE = "airflow.dag_processing.processor"


def dag_ids_to_build() -> frozenset[str] | None:
    """The DAG ids this parse needs, or None for all of them."""
    own = get_parsing_context().dag_id
    if own:
        return frozenset({own})
    ids = frozenset(filter(None, (_dag_id(r) for r in _callback_requests())))
    return ids or None


def _callback_requests() -> list:
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_parse_file" and frame.f_globals.get("__name__") == _PROCESSOR_MODULE:
            return list(getattr(frame.f_locals.get("msg"), "callback_requests", None) or [])
        frame = frame.f_back
    return []


def _dag_id(request) -> str | None:
    return getattr(request, "dag_id", None) or getattr(getattr(request, "ti", None), "dag_id", None)
