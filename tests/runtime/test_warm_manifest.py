"""The manifest WarmLocalExecutor parses before forking serves a task's first dbt invocation only while nothing
dbt parses has changed (include/vyapar/runtime/warm_manifest.py)."""

from __future__ import annotations

import logging
import shutil

import pytest

from include.vyapar import settings
from include.vyapar.runtime import warm_manifest

PARSED = object()  # stands in for dbt's Manifest: what is compared is what the parse read, not the result


@pytest.fixture
def project(tmp_path):
    copy = tmp_path / "dbt"
    shutil.copytree(settings.DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    return copy


def _args(project, *extra):
    return ["build", "--select", "stg_orders", "--project-dir", str(project), "--profiles-dir", str(project),
            "--target", "duckdb", *extra]  # fmt: skip


def _keep(project, env=None):
    parse = ["parse", "--project-dir", str(project), "--profiles-dir", str(project), "--target", "duckdb"]
    warm_manifest.keep(PARSED, parse, env if env is not None else settings.dbt_env(), project)


def test_an_unchanged_project_takes_the_kept_manifest_once(project):
    _keep(project)
    assert warm_manifest.take(_args(project), settings.dbt_env(), project) is PARSED
    assert warm_manifest.take(_args(project), settings.dbt_env(), project) is None  # dbt annotated it: parse


def test_a_task_copy_of_the_project_is_the_same_project(project, tmp_path):
    """Cosmos runs dbt in a temporary folder that links the project's entries (not target/, logs/, profiles.yml)."""
    clone = tmp_path / "cosmos-tmp"
    clone.mkdir()
    for child in project.iterdir():
        if child.name not in ("target", "logs", "profiles.yml"):
            (clone / child.name).symlink_to(child)
    _keep(project)
    args = ["build", "--select", "stg_orders", "--project-dir", str(clone), "--profiles-dir", str(project)]
    assert warm_manifest.take([*args, "--target", "duckdb"], settings.dbt_env(), clone) is PARSED


def test_a_changed_model_means_a_parse(project, caplog):
    _keep(project)
    model = next(project.glob("models/staging/**/stg_orders.sql"))
    model.write_text(model.read_text() + "\n-- changed\n")
    with caplog.at_level(logging.INFO, logger=warm_manifest.__name__):
        assert warm_manifest.take(_args(project), settings.dbt_env(), project) is None
    assert "stg_orders.sql" in caplog.text


def test_an_environment_variable_the_project_reads_means_a_parse_and_its_value_is_not_logged(project, caplog):
    _keep(project)
    env = {**settings.dbt_env(), "VYAPAR_LANDING_DIR": "/elsewhere/secret-value"}
    with caplog.at_level(logging.INFO, logger=warm_manifest.__name__):
        assert warm_manifest.take(_args(project), env, project) is None
    assert "VYAPAR_LANDING_DIR" in caplog.text and "secret-value" not in caplog.text


def test_other_environment_variables_do_not_matter(project):
    _keep(project)
    env = {**settings.dbt_env(), "AIRFLOW_CTX_DAG_RUN_ID": "manual__2026-11-27", "SOMETHING_ELSE": "x"}
    assert warm_manifest.take(_args(project), env, project) is PARSED


@pytest.mark.parametrize("extra", [["--vars", "{incremental_lookback_hours: 1}"], ["--no-partial-parse"]])
def test_arguments_that_change_a_parse_mean_a_parse(project, extra):
    _keep(project)
    assert warm_manifest.take(_args(project, *extra), settings.dbt_env(), project) is None


def test_a_changed_profile_means_a_parse(project):
    _keep(project)
    profiles = project / "profiles.yml"
    profiles.write_text(profiles.read_text() + "\n# changed\n")
    assert warm_manifest.take(_args(project), settings.dbt_env(), project) is None


def test_nothing_kept_means_a_parse(project):
    assert warm_manifest.take(_args(project), settings.dbt_env(), project) is None
