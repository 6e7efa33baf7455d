"""One runtime on every path: bin/start, the compose stack and its celery profile run dbt the way the code's
default says (watcher execution, dbt in the task's process), with the warm executor wherever LocalExecutor runs."""

from __future__ import annotations

import importlib
import re

import yaml

from include.vyapar import settings
from include.vyapar.pipeline import cosmos_config

WARM_EXECUTOR = "include.vyapar.runtime.executor.WarmLocalExecutor"
REPO = settings.REPO_ROOT


def _compose_default(value: str) -> str:
    """`${NAME:-default}` -> default."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", value)
    assert match, value
    return match.group(1)


def _compose_services() -> dict[str, dict]:
    return yaml.safe_load((REPO / "docker-compose.yaml").read_text())["services"]


def test_the_code_defaults_to_the_watcher_with_dbt_in_process(monkeypatch):
    monkeypatch.delenv("VYAPAR_DBT_EXECUTION", raising=False)
    monkeypatch.delenv("VYAPAR_DBT_INVOCATION", raising=False)
    assert (cosmos_config.execution_mode_name(), cosmos_config.invocation_mode_name()) == ("watcher", "dbt_runner")
    config = cosmos_config.execution_config()
    assert (config.execution_mode.value, config.invocation_mode.value) == ("watcher", "dbt_runner")


def test_every_airflow_service_of_compose_and_its_celery_profile_runs_the_code_default():
    services = {name: s for name, s in _compose_services().items() if name.startswith("airflow")}
    assert "airflow-worker" in services and services["airflow-worker"]["profiles"] == ["celery"]
    for name, service in services.items():
        env = service["environment"]
        assert _compose_default(env["VYAPAR_DBT_EXECUTION"]) == cosmos_config.DEFAULT_EXECUTION, name
        assert _compose_default(env["VYAPAR_DBT_INVOCATION"]) == cosmos_config.DEFAULT_INVOCATION, name
        assert _compose_default(env["AIRFLOW__CORE__EXECUTOR"]) == WARM_EXECUTOR, name


def test_env_example_and_bin_start_leave_the_execution_to_the_code_and_run_the_warm_executor():
    example = (REPO / ".env.example").read_text()
    assert not re.search(r"(?m)^VYAPAR_DBT_(EXECUTION|INVOCATION)=", example)  # only a commented line
    assert re.search(rf"(?m)^AIRFLOW_EXECUTOR={re.escape(WARM_EXECUTOR)}$", example)
    start = (REPO / "bin" / "start").read_text()
    assert "VYAPAR_DBT_EXECUTION=" not in start and "VYAPAR_DBT_INVOCATION=" not in start
    assert f'AIRFLOW__CORE__EXECUTOR="${{AIRFLOW__CORE__EXECUTOR:-{WARM_EXECUTOR}}}"' in start
    module, _, name = WARM_EXECUTOR.rpartition(".")
    from airflow.executors.local_executor import LocalExecutor

    assert issubclass(getattr(importlib.import_module(module), name), LocalExecutor)
