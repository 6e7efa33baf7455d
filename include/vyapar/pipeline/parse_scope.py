"""Which of our DAGs a parse of a DAG file needs to build.

Building every DAG (twelve Cosmos task groups) is the cost of a parse. Two kinds of parse need only some:
- a task process parses the file for its own DAG (Airflow's parsing context names it);
- the dag-processor parses the file to run callbacks: every task ended in the triggerer (each watcher sensor)
  sends one, success included, which Airflow 3 then drops ("not a failure callback"). Measured at 100k events:
  27 such parses of the whole file in one daily build, 21 CPU seconds on a 2-core machine that was running dbt.
  Airflow gives such a parse no parsing context; its callback requests are read from the dag-processor's parse
  call on the stack (include/vyapar/runtime/patches/callback_parse_scope.py: Airflow's private names).
Anything else (the dag-processor's regular parse, `airflow dags list`, a test's DagBag) builds them all; so does a
parse whose callers look different (another Airflow version): the fallback is the whole file, never less.
"""

from __future__ import annotations

from airflow.sdk import get_parsing_context

from include.vyapar.runtime.patches.callback_parse_scope import callback_requests


def dag_ids_to_build() -> frozenset[str] | None:
    """The DAG ids this parse needs, or None for all of them."""
    own = get_parsing_context().dag_id
    if own:
        return frozenset({own})
    ids = frozenset(filter(None, (_dag_id(r) for r in callback_requests())))
    return ids or None


def _dag_id(request) -> str | None:
    return getattr(request, "dag_id", None) or getattr(getattr(request, "ti", None), "dag_id", None)
