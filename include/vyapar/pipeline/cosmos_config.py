"""Cosmos configuration, defined once: the dbt project, its profile, and how every dbt task runs."""

from __future__ import annotations

from pathlib import Path

import airflow  # noqa: F401  -- must be imported before cosmos.constants (circular import otherwise)
from cosmos import ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    ExecutionMode,
    InvocationMode,
    LoadMode,
    SourceRenderingBehavior,
    TestBehavior,
    TestIndirectSelection,
)

from include.vyapar import settings


class ManifestMissingError(FileNotFoundError):
    """The compiled dbt manifest is missing: DAGs load from it and never run dbt at parse time."""


def project_config() -> ProjectConfig:
    if not settings.DBT_MANIFEST_PATH.exists():
        raise ManifestMissingError(
            f"dbt manifest not found at {settings.DBT_MANIFEST_PATH}. Build it with `bin/setup` "
            "(runs `dbt parse`); the DAGs load the dbt project from it."
        )
    config = ProjectConfig(
        dbt_project_path=settings.DBT_PROJECT_DIR,
        manifest_path=_dag_manifest_path(),
        project_name="vyaparbazaar",
        env_vars=settings.dbt_env(),
        install_dbt_deps=False,
    )
    # A local file: a plain Path, not the ObjectStoragePath Cosmos wraps it in, whose first open loads every
    # Airflow plugin (and what they import) into the DAG-parsing process.
    config.manifest_path = Path(str(config.manifest_path))
    return config


def _dag_manifest_path() -> Path:
    """The trimmed copy `include.vyapar.pipeline.manifest` writes (what Cosmos reads, no macros), when it is up to date."""
    from include.vyapar.pipeline.manifest import cosmos_manifest_path

    trimmed = cosmos_manifest_path()
    try:
        if trimmed.stat().st_mtime >= settings.DBT_MANIFEST_PATH.stat().st_mtime:
            return trimmed
    except OSError:
        pass
    return settings.DBT_MANIFEST_PATH


def profile_config() -> ProfileConfig:
    """DuckDB: dbt/profiles.yml. Postgres: Cosmos builds the profile from the Airflow connection
    VYAPAR_WAREHOUSE_CONN_ID when the task runs (the password reaches dbt as an environment variable only)."""
    if settings.IS_POSTGRES:
        return postgres_profile_config()
    return ProfileConfig(
        profile_name=settings.DBT_PROFILE_NAME,
        target_name=settings.DBT_TARGET,
        profiles_yml_filepath=settings.DBT_PROJECT_DIR / "profiles.yml",
    )


def postgres_profile_config(conn_id: str | None = None) -> ProfileConfig:
    from cosmos.profiles import PostgresUserPasswordProfileMapping

    return ProfileConfig(
        profile_name=settings.DBT_PROFILE_NAME,
        target_name="postgres",
        profile_mapping=PostgresUserPasswordProfileMapping(
            conn_id=conn_id or settings.WAREHOUSE_CONN_ID,
            # the connection's database is dbname; dbt's default schema (our layers use their own schemas)
            profile_args={"schema": "public", "threads": int(settings.dbt_env()["VYAPAR_PG_THREADS"])},
        ),
    )


# How dbt tasks run: one value everywhere (bin/start, docker-compose.yaml, the celery profile); docs/runtime.md.
#   VYAPAR_DBT_EXECUTION   watcher (default): one `dbt build` per DAG run (producer task), a sensor task per model
#                          that starts and ends in the triggerer (patches/watcher_trigger.py)
#                          local: one dbt process per model task (`dbt build --select <model>`; docs/scaling.md)
#   VYAPAR_DBT_INVOCATION  dbt_runner (default): dbt in the task's own process, under the warehouse flock
#                          (patches/dbt_runner_in_process.py); with include.vyapar.runtime.executor.WarmLocalExecutor
#                          the task starts with dbt imported
#                          subprocess: dbt through dbt-serialized, whose flock serialises DuckDB writers
EXECUTION_MODES = {"local": ExecutionMode.LOCAL, "watcher": ExecutionMode.WATCHER}
INVOCATION_MODES = {"subprocess": InvocationMode.SUBPROCESS, "dbt_runner": InvocationMode.DBT_RUNNER}
DEFAULT_EXECUTION = "watcher"
DEFAULT_INVOCATION = "dbt_runner"


def execution_mode_name() -> str:
    return _choice("VYAPAR_DBT_EXECUTION", EXECUTION_MODES, DEFAULT_EXECUTION)


def invocation_mode_name() -> str:
    return _choice("VYAPAR_DBT_INVOCATION", INVOCATION_MODES, DEFAULT_INVOCATION)


def _choice(var: str, choices: dict, default: str) -> str:
    value = settings.setting(var, default).strip().lower()
    if value not in choices:
        raise ValueError(f"{var}={value!r}: expected one of {', '.join(choices)}")
    return value


def execution_config(execution: str | None = None, invocation: str | None = None) -> ExecutionConfig:
    execution = execution or execution_mode_name()
    invocation = invocation or invocation_mode_name()
    # dbt_runner runs through patches/dbt_runner_in_process.py, installed by the DAG file (patches.install_for_dags)
    return ExecutionConfig(
        execution_mode=EXECUTION_MODES[execution],
        invocation_mode=INVOCATION_MODES[invocation],
        # Subprocess through dbt-serialized: the flock it takes serialises DuckDB writers across all DAGs.
        dbt_executable_path=str(settings.DBT_SERIALIZED) if invocation == "subprocess" else settings.DBT_BIN,
        # A model's test task runs only tests whose every parent is built by then (a relationships test to a
        # fact must not run in the dimensions DAG before the fact exists).
        test_indirect_selection=TestIndirectSelection.BUILDABLE,
    )


def render_config(select: tuple[str, ...], with_sources: bool = False, execution: str | None = None) -> RenderConfig:
    return RenderConfig(
        load_method=LoadMode.DBT_MANIFEST,
        select=list(select),
        # Models: one task per model that builds it and runs its tests (`dbt build --select model`): the UI
        # keeps a task per model, and each dbt process start (~2-3 s) is paid once per model, not twice.
        # Sources: a freshness task and a source-tests task each (BUILD would drop the source tests).
        # Watcher mode has no BUILD task (its producer runs one `dbt build`): a sensor per model and per model's tests.
        test_behavior=TestBehavior.AFTER_EACH
        if with_sources or (execution or execution_mode_name()) == "watcher"
        else TestBehavior.BUILD,
        source_rendering_behavior=SourceRenderingBehavior.ALL if with_sources else SourceRenderingBehavior.NONE,
        enable_mock_profile=False,
    )
