"""astronomer/astronomer-cosmos#2294: every DbtTaskGroup decodes the manifest again (~30 ms each, a third of our
parse) and re-reads dbt_project.yml (pure-Python YAML) only to find the packages folder. Our twelve groups share one
project: here both are read once per process and file version. Cosmos reads the manifest dict, never writes it."""

from __future__ import annotations

import functools
import os

_MANIFESTS: dict[tuple, dict] = {}


def install() -> None:
    """Idempotent."""
    import airflow  # noqa: F401 -- before cosmos (a circular import otherwise)
    from cosmos.dbt import graph

    if getattr(graph.DbtGraph._load_manifest_from_file, "__vyapar_patch__", False):
        return
    uncached = graph.DbtGraph._load_manifest_from_file

    @functools.wraps(uncached)
    def load_manifest_once(dbt_graph, manifest_path):
        try:
            st = os.stat(str(manifest_path))
            key = (str(manifest_path), st.st_mtime_ns, st.st_size)
        except (OSError, TypeError, ValueError):  # not a local file: Cosmos reads it its own way
            return uncached(dbt_graph, manifest_path)
        if key not in _MANIFESTS:
            _MANIFESTS.clear()
            _MANIFESTS[key] = uncached(dbt_graph, manifest_path)
        return _MANIFESTS[key]

    load_manifest_once.__vyapar_patch__ = True  # type: ignore[attr-defined]
    graph.DbtGraph._load_manifest_from_file = load_manifest_once
    graph.get_dbt_packages_subpath = functools.lru_cache(maxsize=8)(graph.get_dbt_packages_subpath)
