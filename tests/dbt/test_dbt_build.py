"""`dbt build` on generated data: every model, data test and unit test passes; the manifest parses fast."""

from __future__ import annotations

import json
import time

from warehouse_harness import DBT_PROJECT_DIR, Warehouse

LAYERS = {
    "staging": "staging",
    "intermediate": "intermediate",
    "dimensions": "core",
    "facts": "core",
    "marts": "marts",
    "ml": "ml",
}


def test_build_runs_every_model_test_and_unit_test_without_error(built):
    wh, result = built
    assert result.returncode == 0, result.output[-6000:]
    results = result.json("run_results.json")["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    failed = {uid: s for uid, s in statuses.items() if s not in ("success", "pass", "warn")}
    assert not failed, failed
    kinds = {uid.split(".")[0] for uid in statuses}
    assert {"model", "test", "unit_test"} <= kinds
    assert sum(uid.startswith("unit_test.") for uid in statuses) >= 2
    assert sum(uid.startswith("model.") for uid in statuses) >= 28


def test_parse_writes_a_manifest_quickly_with_one_layer_folder_tag_and_owner_per_model(tmp_path):
    wh = Warehouse(tmp_path)
    started = time.monotonic()
    wh.dbt("parse", "--no-partial-parse")
    assert time.monotonic() - started < 60
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    assert len(models) >= 28
    for node in models:
        folder = node["original_file_path"].split("/")[1]
        assert folder in LAYERS, node["original_file_path"]
        assert node["original_file_path"].count("/") == 2, "models sit directly in their layer folder"
        assert node["schema"] == LAYERS[folder], node["name"]
        assert folder in node["tags"], node["name"]
        assert node["config"]["meta"].get("owner"), node["name"]
        assert node["description"], node["name"]
        undocumented = [c for c, col in node["columns"].items() if not col.get("description")]
        assert not undocumented, (node["name"], undocumented)
        if folder == "marts":
            assert node["config"]["contract"]["enforced"], node["name"]


def test_project_parses_without_deprecation_warnings(tmp_path):
    result = Warehouse(tmp_path).dbt("parse", "--no-partial-parse", "--show-all-deprecations")
    assert "deprecat" not in result.output.lower(), result.output
    assert (DBT_PROJECT_DIR / "dbt_project.yml").exists()


def test_layers_build_one_after_another_as_the_layer_dags_run_them(warehouse):
    """Each layer selected by its folder, in DAG order, on an empty warehouse. Tests are picked with
    `--indirect-selection buildable` (what the Cosmos render config should use): a test runs in the layer that
    builds its last parent, never against another layer's missing or stale tables."""
    empty = warehouse.root / "layers.duckdb"
    for layer in LAYERS:
        result = warehouse.dbt(
            "build", "--select", f"path:models/{layer}", "--indirect-selection", "buildable", duckdb_path=empty
        )
        statuses = [r["status"] for r in result.json("run_results.json")["results"]]
        assert statuses and set(statuses) <= {"success", "pass", "warn"}, (layer, statuses)
