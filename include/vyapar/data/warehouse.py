"""Runs dbt against the warehouse outside Airflow (setup, tests, benchmarks), through the same lock as the DAGs.

On the Postgres target the dbt profile reads VYAPAR_PG_* derived from the Airflow connection
(settings.dbt_cli_env()), the same connection Cosmos builds its profile from.
"""

from __future__ import annotations

import subprocess
import sys

from include.vyapar import settings


def dbt_command(*args: str, serialized: bool = True) -> list[str]:
    """A dbt command line for our project; `serialized` waits for the warehouse lock, like every Cosmos task.

    Commands that open no database (parse, ls) pass serialized=False and never wait behind a running build.
    """
    dbt = str(settings.DBT_SERIALIZED) if serialized else settings.DBT_BIN
    return [
        dbt, *args,
        "--project-dir", str(settings.DBT_PROJECT_DIR), "--profiles-dir", str(settings.DBT_PROJECT_DIR),
        # As Cosmos passes them: dbt's partial parse keys on these arguments, so the partial parse written with
        # the manifest (bin/setup, the image build) serves each DAG's first Cosmos run (a full parse otherwise).
        "--profile", settings.DBT_PROFILE_NAME, "--target", settings.DBT_TARGET,
    ]  # fmt: skip


def run_dbt(*args: str, check: bool = True, capture: bool = False) -> subprocess.CompletedProcess:
    if not settings.IS_POSTGRES:
        settings.DUCKDB_PATH.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        dbt_command(*args),
        env=settings.subprocess_env(**settings.dbt_cli_env()),
        cwd=settings.DBT_PROJECT_DIR,
        check=check,
        capture_output=capture,
        text=True,
    )


def bootstrap() -> int:
    """First build of an empty warehouse so every DAG has its upstream tables from the start.

    Postgres: first loads the landing folder into schema raw; an unreachable warehouse is a one-line error.
    """
    if settings.IS_POSTGRES:
        from include.vyapar.data.pg_raw import sync

        try:
            result = sync(settings.LANDING_DIR)
        except settings.WarehouseConnectionError as exc:
            print(f"bootstrap: {exc}", file=sys.stderr)
            return 1
        print(f"bootstrap: raw schema of {settings.postgres_warehouse()}: {result.summary()}")
    proc = run_dbt("build", "--target-path", str(settings.DATA_DIR / "dbt-target"), check=False)
    return proc.returncode


if __name__ == "__main__":
    if sys.argv[1:] == ["bootstrap"]:
        sys.exit(bootstrap())
    print("usage: python -m include.vyapar.data.warehouse bootstrap", file=sys.stderr)
    sys.exit(2)
