"""A bad alerting.yaml is caught where people look first: an import error of the DAG file, naming the key."""

from __future__ import annotations

import yaml

from include.vyapar import settings
from include.vyapar.alerting import config as alerting_config


def _dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(settings.REPO_ROOT / "dags")


def test_bad_alerting_config_is_a_dag_import_error_naming_the_key(tmp_path, monkeypatch):
    raw = yaml.safe_load(alerting_config.DEFAULT_CONFIG_PATH.read_text())
    raw["alerts"]["slow"]["treshold_ratio"] = 2  # a typo
    bad = tmp_path / "alerting.yaml"
    bad.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("VYAPAR_ALERTING_CONFIG", str(bad))

    dagbag = _dagbag()

    assert not dagbag.dags
    (error,) = dagbag.import_errors.values()
    assert "alerts.slow.treshold_ratio: unknown key" in error


def test_resource_metric_typo_is_named_too(tmp_path, monkeypatch):
    raw = yaml.safe_load(alerting_config.DEFAULT_CONFIG_PATH.read_text())
    raw["alerts"]["resources"]["metrics"] = ["memory", "gpu"]
    bad = tmp_path / "alerting.yaml"
    bad.write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("VYAPAR_ALERTING_CONFIG", str(bad))

    (error,) = _dagbag().import_errors.values()
    assert "alerts.resources.metrics[1]" in error and "unknown metric 'gpu'" in error
