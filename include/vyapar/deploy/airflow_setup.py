"""Creates what the DAGs expect to find in Airflow: the warehouse pool (`python -m include.vyapar.deploy.airflow_setup`).

DuckDB: one slot (one writing process per file). Postgres: VYAPAR_WAREHOUSE_POOL_SLOTS slots (default 8).
"""

from __future__ import annotations

import subprocess

from include.vyapar import settings


def pool_description() -> str:
    if settings.IS_POSTGRES:
        return f"{settings.WAREHOUSE_POOL_SLOTS} concurrent dbt tasks against the shared Postgres warehouse."
    return "One slot: DuckDB allows one writing process per file, so dbt tasks of all DAGs take turns."


def ensure_pools() -> None:
    subprocess.run(
        ["airflow", "pools", "set", settings.WAREHOUSE_POOL, str(settings.WAREHOUSE_POOL_SLOTS), pool_description()],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


if __name__ == "__main__":
    ensure_pools()
    print(f"pool {settings.WAREHOUSE_POOL}: {settings.WAREHOUSE_POOL_SLOTS} slot(s)")
