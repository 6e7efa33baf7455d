"""Creates what the DAGs expect to find in Airflow: the one-slot DuckDB pool (`python -m include.vyapar.airflow_setup`)."""

from __future__ import annotations

import subprocess

from include.vyapar import settings


def ensure_pools() -> None:
    subprocess.run(
        ["airflow", "pools", "set", settings.WAREHOUSE_POOL, "1",
         "One slot: DuckDB allows one writing process per file, so dbt tasks of all DAGs take turns."],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip


if __name__ == "__main__":
    ensure_pools()
    print(f"pool {settings.WAREHOUSE_POOL}: 1 slot")
