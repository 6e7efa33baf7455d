"""Incident keys for Airflow tasks, and the keys of their dbt ancestors (lineage from the compiled manifest).

A dbt node is one incident wherever it runs (the marts DAG or a business DAG): keys are by node, not by DAG.
"""

from __future__ import annotations

import json
from functools import cache

from include.vyapar import settings

MODEL_BUILD_SUFFIX = "_model_build"  # Cosmos TestBehavior.BUILD task id: dbt.<model>_model_build


@cache
def _manifest() -> dict:
    try:
        return json.loads(settings.DBT_MANIFEST_PATH.read_text())
    except (OSError, ValueError):
        return {"nodes": {}, "sources": {}, "parent_map": {}}


def node_for_task(task_id: str) -> str | None:
    """The dbt unique_id a Cosmos task runs, or None for a non-dbt task."""
    if not task_id.startswith("dbt."):
        return None
    name = task_id.removeprefix("dbt.")
    manifest = _manifest()
    if name.endswith(MODEL_BUILD_SUFFIX):
        model = name.removesuffix(MODEL_BUILD_SUFFIX)
        return next((uid for uid, n in manifest["nodes"].items() if n["resource_type"] == "model" and n["name"] == model),
                    f"model.vyaparbazaar.{model}")  # fmt: skip
    group = name.rsplit(".", 1)[0]
    for uid, source in manifest["sources"].items():
        if f"{source['source_name']}_{source['name']}" == group:
            return uid
    return None


def dedup_key_for_task(dag_id: str, task_id: str) -> str:
    node = node_for_task(task_id)
    return f"failed_run:{node}" if node else f"failed_run:{dag_id}.{task_id}"


def ancestors(node_id: str) -> list[str]:
    parent_map = _manifest().get("parent_map", {})
    seen, stack = [], list(parent_map.get(node_id, []))
    while stack:
        parent = stack.pop()
        if parent not in seen:
            seen.append(parent)
            stack.extend(parent_map.get(parent, []))
    return seen


def upstream_keys(node_id: str) -> list[str]:
    """Keys of open incidents upstream that would explain a failure or slowness of `node_id`."""
    keys = []
    for parent in ancestors(node_id):
        keys.append(f"failed_run:{parent}")
        if parent.startswith("source."):
            keys.append(f"stale_data:{parent}")
    return keys


def upstream_keys_for_task(dag_id: str, task_id: str) -> list[str]:
    node = node_for_task(task_id)
    return upstream_keys(node) if node else []
