"""The landing folder as an extractor leaves it: <table>/<batch_id>.parquet per arrival, plus _state.json.

Every file appears atomically (written under a hidden temp name, then renamed), so a reader globbing
`<table>/*.parquet` never sees half a file.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from include.vyapar.data.datagen.schema import TABLES, landed_schema

STATE_FILE = "_state.json"
# The extractor's manifest: one row per table per batch, written even when a table brought no rows, so
# "when did this table last land" is known for quiet tables too (dbt source freshness reads it).
LEDGER_DIR = "_batches"
LEDGER_SCHEMA = pa.schema(
    [("table_name", pa.string()), ("batch_id", pa.string()), ("row_count", pa.int64()), ("_loaded_at", pa.timestamp("us"))]
)


class LandingNotEmptyError(RuntimeError):
    """The landing folder already holds data and the caller did not ask to wipe it."""


def batch_id(batch_number: int) -> str:
    return f"{batch_number:06d}"


def batch_path(landing_dir: Path, table: str, batch_number: int) -> Path:
    return Path(landing_dir) / table / f"{batch_id(batch_number)}.parquet"


def holds_data(landing_dir: Path) -> bool:
    landing_dir = Path(landing_dir)
    return (landing_dir / STATE_FILE).exists() or any(
        next((landing_dir / table).glob("*.parquet"), None) for table in TABLES if (landing_dir / table).is_dir()
    )


def wipe(landing_dir: Path) -> None:
    """Remove what this generator writes, and nothing else that may share the folder."""
    landing_dir = Path(landing_dir)
    for table in TABLES:
        shutil.rmtree(landing_dir / table, ignore_errors=True)
    shutil.rmtree(landing_dir / LEDGER_DIR, ignore_errors=True)
    (landing_dir / STATE_FILE).unlink(missing_ok=True)


def write_batch_file(
    landing_dir: Path, table: str, batch_number: int, chunks: Iterable[pa.Table], loaded_at_us: int
) -> int:
    """Write one table's file for one batch from one or more chunks; returns rows written."""
    final = batch_path(landing_dir, table, batch_number)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    schema = landed_schema(table)
    rows = 0
    try:
        with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
            for chunk in chunks:
                metadata = [
                    pa.array(np.full(len(chunk), loaded_at_us, dtype=np.int64), schema.field("_loaded_at").type),
                    pa.array([batch_id(batch_number)] * len(chunk), pa.string()),
                ]
                writer.write_table(pa.Table.from_arrays(chunk.columns + metadata, schema=schema))
                rows += len(chunk)
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)
    return rows


def write_batch_ledger(landing_dir: Path, batch_number: int, rows: dict[str, int], loaded_at_us: int) -> None:
    """Record the batch in the ledger, after its table files and before the state file."""
    final = Path(landing_dir) / LEDGER_DIR / f"{batch_id(batch_number)}.parquet"
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    tables = sorted(rows)
    ledger = pa.Table.from_arrays(
        [
            pa.array(tables, pa.string()),
            pa.array([batch_id(batch_number)] * len(tables), pa.string()),
            pa.array([rows[t] for t in tables], pa.int64()),
            pa.array(np.full(len(tables), loaded_at_us, dtype=np.int64), pa.timestamp("us")),
        ],
        schema=LEDGER_SCHEMA,
    )
    try:
        pq.write_table(ledger, temporary)
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def read_state(landing_dir: Path) -> dict:
    path = Path(landing_dir) / STATE_FILE
    if not path.exists():
        raise FileNotFoundError(f"No {STATE_FILE} in {landing_dir}: run `init` first.")
    return json.loads(path.read_text())


def write_state(landing_dir: Path, state: dict) -> None:
    path = Path(landing_dir) / STATE_FILE
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def table_row_counts(landing_dir: Path | str) -> dict[str, int]:
    """Rows landed so far per table, read from Parquet footers only."""
    counts = {}
    for table in TABLES:
        files = sorted((Path(landing_dir) / table).glob("*.parquet"))
        counts[table] = sum(pq.read_metadata(file).num_rows for file in files)
    return counts


def query(landing_dir: Path, sql: str, **params) -> pa.Table:
    """Run DuckDB SQL in which `{table}` placeholders stand for all landed files of that table."""
    globs = {table: f"read_parquet('{Path(landing_dir) / table / '*.parquet'}')" for table in TABLES}
    with duckdb.connect() as connection:
        return connection.sql(sql.format(**globs), params=params or None).to_arrow_table()
