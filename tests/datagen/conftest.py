"""Shared fixtures: a small landed history (and a few hourly arrivals) in a temp folder, queried with DuckDB."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from include.vyapar.data.datagen import TABLES, generate_initial, land_next_batch

AS_OF = "2026-11-26T10:00:00"
SMALL_SCALE = 0.05


def landed_views(landing: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per table over every landed batch file."""
    connection = duckdb.connect()
    for table in TABLES:
        connection.execute(f"create view {table} as select * from read_parquet('{landing / table}/*.parquet')")
    return connection


def scalar(connection: duckdb.DuckDBPyConnection, sql: str):
    return connection.sql(sql).fetchall()[0][0]


@pytest.fixture(scope="session")
def history(tmp_path_factory) -> Path:
    """Batch 000000 only, at the small test scale."""
    landing = tmp_path_factory.mktemp("history")
    generate_initial(landing, scale=SMALL_SCALE, seed=42, as_of=AS_OF, progress=False)
    return landing


@pytest.fixture(scope="session")
def with_arrivals(tmp_path_factory) -> Path:
    """History plus three hourly arrivals, large enough that every hour moves some order statuses."""
    landing = tmp_path_factory.mktemp("arrivals")
    generate_initial(landing, scale=0.1, seed=7, as_of=AS_OF, progress=False)
    land_next_batch(landing, hours=3)
    return landing
