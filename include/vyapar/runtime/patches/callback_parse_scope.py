"""The callback requests of the dag-processor parse that is running (Airflow gives a callback parse no parsing
context): read from its parse call, `airflow.dag_processing.processor._parse_file(msg, ...)`, on the stack.
include/vyapar/pipeline/parse_scope.py builds only those DAGs. No upstream issue filed. Patches nothing."""

from __future__ import annotations

import sys

PROCESSOR_MODULE = "airflow.dag_processing.processor"


def callback_requests() -> list:
    """The running `_parse_file`'s callback requests; [] outside one (or where the callers look different)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "_parse_file" and frame.f_globals.get("__name__") == PROCESSOR_MODULE:
            return list(getattr(frame.f_locals.get("msg"), "callback_requests", None) or [])
        frame = frame.f_back
    return []
