"""dbt lineage and ownership for alerts, read from the compiled manifest (loaded once per process).

Incident keys are per dbt node, not per DAG: the same model failing in two DAGs is one incident.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.vyapar import settings

BUILT = ("model", "seed", "snapshot")
TESTS = ("test", "unit_test")


@dataclass(frozen=True)
class Manifest:
    """The parts of manifest.json alerting needs: nodes, sources, unit tests, and the parent map."""

    nodes: dict[str, dict[str, Any]]
    parents: dict[str, list[str]]
    children: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: Path) -> Manifest:
        raw = json.loads(path.read_text(encoding="utf-8"))
        nodes = {**raw.get("nodes", {}), **raw.get("sources", {}), **raw.get("unit_tests", {})}
        parents = {k: list(v) for k, v in (raw.get("parent_map") or {}).items()}
        for unique_id, node in raw.get("unit_tests", {}).items():
            parents.setdefault(unique_id, list(node.get("depends_on", {}).get("nodes", [])))
        children: dict[str, list[str]] = {}
        for child, its_parents in parents.items():
            for parent in its_parents:
                children.setdefault(parent, []).append(child)
        return cls(nodes=nodes, parents=parents, children=children)

    def node(self, unique_id: str | None) -> dict[str, Any]:
        return self.nodes.get(unique_id or "", {})

    def resource_type(self, unique_id: str) -> str:
        return self.node(unique_id).get("resource_type") or unique_id.split(".", 1)[0]

    def name(self, unique_id: str) -> str:
        node = self.node(unique_id)
        if node.get("resource_type") == "source":
            return f"{node['source_name']}.{node['name']}"
        return node.get("name") or unique_id.rsplit(".", 1)[-1]

    def ancestors(self, unique_id: str) -> set[str]:
        """Every node upstream of `unique_id` (transitively), not including itself."""
        seen: set[str] = set()
        stack = list(self.parents.get(unique_id, []))
        while stack:
            parent = stack.pop()
            if parent not in seen:
                seen.add(parent)
                stack.extend(self.parents.get(parent, []))
        return seen

    def tested_node(self, test_id: str) -> str | None:
        """The model or source a test is attached to (its first built/source parent otherwise)."""
        node = self.node(test_id)
        if node.get("attached_node"):
            return node["attached_node"]
        for parent in self.parents.get(test_id, []):
            if self.resource_type(parent) in (*BUILT, "source"):
                return parent
        return None

    def owner_of(self, unique_id: str | None, default: str | None = None) -> str | None:
        """`meta.owner` of a node; a test answers with its tested node's owner."""
        if not unique_id:
            return default
        node = self.node(unique_id)
        meta = {**(node.get("meta") or {}), **((node.get("config") or {}).get("meta") or {})}
        if meta.get("owner"):
            return str(meta["owner"])
        if self.resource_type(unique_id) in TESTS:
            return self.owner_of(self.tested_node(unique_id), default)
        return default

    def tests_built_with(self, model_id: str) -> list[str]:
        """Tests `dbt build --select <model>` runs with indirect selection `buildable`: every parent is the
        model itself or one of its ancestors (so it is buildable by the time the model is built)."""
        allowed = self.ancestors(model_id) | {model_id}
        return sorted(
            child for child in self.children.get(model_id, [])
            if self.resource_type(child) in TESTS and set(self.parents.get(child, [])) <= allowed
        )  # fmt: skip

    def upstream_keys(self, unique_id: str) -> list[str]:
        """Incident keys of every ancestor: a downstream alert folds into any of them that is open."""
        if self.resource_type(unique_id) == "source":
            # A table of a feed that stopped altogether is one incident: the feed's.
            return [feed_key(self.node(unique_id).get("source_name", ""))]
        if self.resource_type(unique_id) in TESTS:
            # A test's upstream is what it tests and that node's upstream, not its sibling tests.
            keys = []
            for parent in self.parents.get(unique_id, []):
                keys += [incident_key(parent, self.resource_type(parent)), *self.upstream_keys(parent)]
            return list(dict.fromkeys(k for k in keys if k))
        ancestors = self.ancestors(unique_id)
        keys = [incident_key(a, self.resource_type(a)) for a in sorted(ancestors)]
        keys += [feed_key(self.node(a).get("source_name", "")) for a in sorted(ancestors) if self.resource_type(a) == "source"]
        # Tests on ancestors only (a failed data-quality check upstream explains bad data downstream).
        for ancestor in sorted(ancestors):
            for child in self.children.get(ancestor, []):
                if self.resource_type(child) in TESTS and set(self.parents.get(child, [])) <= ancestors:
                    keys.append(incident_key(child, self.resource_type(child)))
        return list(dict.fromkeys(k for k in keys if k))

    def downstream_models(self, unique_id: str) -> list[str]:
        seen: set[str] = set()
        stack = list(self.children.get(unique_id, []))
        while stack:
            child = stack.pop()
            if child not in seen and self.resource_type(child) in BUILT:
                seen.add(child)
                stack.extend(self.children.get(child, []))
        return sorted(seen)


def feed_key(source_name: str) -> str:
    """The incident of a whole source feed going stale (several tables at once: the extractor stopped)."""
    return f"stale_data:feed:{source_name}"


def incident_key(unique_id: str, resource_type: str | None = None) -> str:
    """The dedup key of a node's failure: models `failed_run:`, tests `data_quality:`, sources `stale_data:`."""
    resource_type = resource_type or unique_id.split(".", 1)[0]
    if resource_type in TESTS:
        return f"data_quality:{unique_id}"
    if resource_type == "source":
        return f"stale_data:{unique_id}"
    if resource_type in BUILT:
        return f"failed_run:{unique_id}"
    return ""


@functools.cache
def _load(path: str, mtime_ns: int) -> Manifest:
    return Manifest.from_file(Path(path))


def manifest(path: Path | None = None) -> Manifest:
    """The manifest at VYAPAR_DBT_MANIFEST, parsed once per process (again only if the file changes)."""
    path = path or settings.DBT_MANIFEST_PATH
    try:
        return _load(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError):
        return Manifest(nodes={}, parents={})


def names(manifest_: Manifest, unique_ids: Iterable[str]) -> list[str]:
    return [manifest_.name(u) for u in unique_ids]


MODEL_BUILD_SUFFIX = "_model_build"  # Cosmos TestBehavior.BUILD task id: dbt.<model>_model_build


def node_for_task(task_id: str, manifest_: Manifest | None = None) -> str | None:
    """The dbt unique_id a Cosmos task runs, from its task id alone (the scheduler has no operator object)."""
    if not task_id.startswith("dbt."):
        return None
    manifest_ = manifest_ or manifest()
    name = task_id.removeprefix("dbt.")
    if name.endswith(MODEL_BUILD_SUFFIX):
        model = name.removesuffix(MODEL_BUILD_SUFFIX)
        return next((u for u, n in manifest_.nodes.items() if n.get("resource_type") in BUILT and n.get("name") == model),
                    None)  # fmt: skip
    group = name.rsplit(".", 1)[0]  # sources: dbt.<source>_<table>.source / .test
    return next((u for u, n in manifest_.nodes.items()
                 if n.get("resource_type") == "source" and f"{n['source_name']}_{n['name']}" == group), None)  # fmt: skip
