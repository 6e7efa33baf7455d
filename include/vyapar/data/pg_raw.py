"""Loads the landing folder into the Postgres warehouse's `raw` schema, where the dbt sources read it there.

On DuckDB the sources read `<landing>/<table>/*.parquet` in place (unioned by column name). On Postgres this
module keeps schema `raw` a mirror of the same files: one table per source table plus `raw._batches` (the
batch ledger), so both warehouses see the same rows.

- One transaction per batch: every table's rows of the batch and its ledger rows appear together. Re-loading a
  batch deletes its rows first (by `_batch_id`), so nothing is duplicated or lost.
- `raw._load_log` remembers each loaded file's fingerprint (size, mtime): `sync()` loads new or changed files
  and drops the rows of files no longer in the landing folder (e.g. quarantined by the contract check).
- A batch that brings a new column adds it (`alter table ... add column`); a column whose type changes is
  widened (integer -> bigint -> double precision, else text), like DuckDB's union_by_name.
- Rows go in with COPY (CSV rendered by pyarrow), never row by row. A file that cannot be read is skipped with
  a warning: the landing check quarantines it.

`python -m include.vyapar.data.pg_raw sync [--landing DIR]` runs a sync by hand.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from include.vyapar import settings
from include.vyapar.data.datagen.landing import LEDGER_DIR
from include.vyapar.data.datagen.schema import TABLES

RAW_SCHEMA = "raw"
LEDGER_TABLE = LEDGER_DIR  # raw._batches, the ledger, named like its landing folder
LOAD_LOG = "_load_log"
# One sync at a time across all workers (pg_advisory_lock key; any constant unique to this loader).
SYNC_LOCK_KEY = 7_283_190_417
COPY_ROWS_PER_CHUNK = 100_000
CONNECT_TIMEOUT_SECONDS = 10


class WarehouseUnreachableError(settings.WarehouseConnectionError):
    """The Postgres warehouse named by the Airflow connection does not accept connections."""


@dataclass
class SyncResult:
    loaded: dict[str, dict[str, int]] = field(default_factory=dict)  # batch -> table -> rows
    removed: list[tuple[str, str]] = field(default_factory=list)  # (table, batch) whose file disappeared
    skipped: list[str] = field(default_factory=list)  # unreadable files, left to the landing check

    @property
    def batches(self) -> list[str]:
        return sorted(self.loaded)

    def summary(self) -> str:
        rows = sum(sum(t.values()) for t in self.loaded.values())
        return (
            f"{len(self.loaded)} batch(es) loaded ({rows} rows), {len(self.removed)} file(s) removed, "
            f"{len(self.skipped)} unreadable file(s) skipped"
        )


def connect(warehouse: settings.PostgresWarehouse | None = None):
    """A psycopg connection to the warehouse; WarehouseUnreachableError (no password in it) when it is down."""
    import psycopg

    warehouse = warehouse or settings.postgres_warehouse()
    kwargs = {"sslmode": warehouse.sslmode} if warehouse.sslmode else {}
    try:
        return psycopg.connect(
            host=warehouse.host,
            port=warehouse.port,
            user=warehouse.user,
            password=warehouse.password,
            dbname=warehouse.dbname,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="vyapar-raw-loader",
            **kwargs,
        )
    except psycopg.OperationalError as exc:
        reason = str(exc).replace(warehouse.password, "***") if warehouse.password else str(exc)
        raise WarehouseUnreachableError(
            f"cannot reach the Postgres warehouse {warehouse} (Airflow connection {settings.WAREHOUSE_CONN_ID!r}): "
            f"{reason.strip()}"
        ) from None


# ---------------------------------------------------------------------------------------------------- types


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type) or pa.types.is_int32(arrow_type):
        return "integer"
    if pa.types.is_uint8(arrow_type) or pa.types.is_uint16(arrow_type):
        return "integer"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_decimal(arrow_type):
        return "numeric"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp without time zone"
    if pa.types.is_date(arrow_type):
        return "date"
    return "text"  # anything else (lists, structs, binary) arrives as its text rendering


_WIDENING = {
    frozenset({"integer", "bigint"}): "bigint",
    frozenset({"integer", "double precision"}): "double precision",
    frozenset({"bigint", "double precision"}): "double precision",
    frozenset({"integer", "numeric"}): "numeric",
    frozenset({"bigint", "numeric"}): "numeric",
    frozenset({"date", "timestamp without time zone"}): "timestamp without time zone",
}


def _common_type(current: str, incoming: str) -> str:
    if current == incoming:
        return current
    return _WIDENING.get(frozenset({current, incoming}), "text")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _relation(table: str) -> str:
    return f"{_quoted(RAW_SCHEMA)}.{_quoted(table)}"


# ------------------------------------------------------------------------------------------------ catalogue


def _columns(cur, table: str) -> dict[str, str]:
    cur.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = %s and table_name = %s order by ordinal_position",
        (RAW_SCHEMA, table),
    )
    return dict(cur.fetchall())


def _ensure_table(cur, table: str, schema: pa.Schema, key: str) -> dict[str, str]:
    """Create the table, add new columns, widen changed ones; returns the table's column types after that."""
    existing = _columns(cur, table)
    # An all-null column (Arrow type null) takes whatever type the table has for it.
    wanted = {f.name: existing.get(f.name, "text") if pa.types.is_null(f.type) else _pg_type(f.type) for f in schema}
    if not existing:
        columns = ", ".join(f"{_quoted(n)} {t}" for n, t in wanted.items())
        cur.execute(f"create table {_relation(table)} ({columns})")
        cur.execute(f"create index on {_relation(table)} ({_quoted(key)})")
        if "_loaded_at" in wanted:  # incremental models filter on arrival time
            cur.execute(f"create index on {_relation(table)} (_loaded_at)")
        return wanted
    for name, pg_type in wanted.items():
        if name not in existing:
            print(f"raw.{table}: new column {name} ({pg_type})")
            cur.execute(f"alter table {_relation(table)} add column {_quoted(name)} {pg_type}")
            existing[name] = pg_type
        elif (common := _common_type(existing[name], pg_type)) != existing[name]:
            print(f"raw.{table}: column {name} widened from {existing[name]} to {common} (a batch brought {pg_type})")
            cur.execute(
                f"alter table {_relation(table)} alter column {_quoted(name)} type {common} "
                f"using {_quoted(name)}::{common}"
            )
            existing[name] = common
    return existing


def _ensure_bookkeeping(cur) -> None:
    cur.execute(f"create schema if not exists {_quoted(RAW_SCHEMA)}")
    cur.execute(
        f"create table if not exists {_relation(LOAD_LOG)} ("
        "table_name text not null, batch_id text not null, fingerprint text not null, row_count bigint not null, "
        "loaded_at timestamp with time zone not null default now(), primary key (table_name, batch_id))"
    )


# -------------------------------------------------------------------------------------------------- loading


def _fingerprint(path: Path) -> str:
    stat = path.stat()
    return f"{stat.st_size}:{stat.st_mtime_ns}"


def _csv_chunks(parquet: pq.ParquetFile, batch_id: str, key: str) -> Iterable[bytes]:
    """The file's rows as CSV (no header), in chunks; the batch key is the file's name, as in the contract."""
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    for record_batch in parquet.iter_batches(batch_size=COPY_ROWS_PER_CHUNK):
        table = pa.Table.from_batches([record_batch])
        columns = []
        for name, column in zip(table.column_names, table.columns, strict=True):
            if name == key:
                column = pa.array([batch_id] * len(table), pa.string())
            elif _pg_type(column.type) == "text" and not pa.types.is_string(column.type):
                column = column.cast(pa.string()) if not pa.types.is_null(column.type) else column
            columns.append(column)
        if key not in table.column_names:
            columns.append(pa.array([batch_id] * len(table), pa.string()))
        names = table.column_names + ([key] if key not in table.column_names else [])
        buffer = io.BytesIO()
        pacsv.write_csv(pa.Table.from_arrays(columns, names=names), buffer, options)
        yield buffer.getvalue()


def _load_file(cur, table: str, path: Path, batch_id: str, key: str) -> int:
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    if key not in schema.names:
        schema = schema.append(pa.field(key, pa.string()))
    _ensure_table(cur, table, schema, key)
    cur.execute(f"delete from {_relation(table)} where {_quoted(key)} = %s", (batch_id,))
    names = ", ".join(_quoted(n) for n in schema.names)
    with cur.copy(f"copy {_relation(table)} ({names}) from stdin with (format csv)") as copy:
        for chunk in _csv_chunks(parquet, batch_id, key):
            copy.write(chunk)
    return parquet.metadata.num_rows


def _delete_batch(cur, table: str, batch_id: str, key: str) -> None:
    if _columns(cur, table):
        cur.execute(f"delete from {_relation(table)} where {_quoted(key)} = %s", (batch_id,))
    cur.execute(f"delete from {_relation(LOAD_LOG)} where table_name = %s and batch_id = %s", (table, batch_id))


def _landed_files(landing: Path, batches: set[str] | None) -> dict[tuple[str, str], Path]:
    files = {}
    for table in (*TABLES, LEDGER_DIR):
        for path in sorted((landing / table).glob("*.parquet")):
            if batches is None or path.stem in batches:
                files[(table, path.stem)] = path
    return files


def _key(table: str) -> str:
    return "batch_id" if table == LEDGER_TABLE else "_batch_id"


def sync(landing: Path | str | None = None, batches: Iterable[str] | None = None, conn=None) -> SyncResult:
    """Make schema `raw` mirror the landing folder (or only the given batches): load new and changed files,
    drop the rows of files that left the folder. Idempotent; safe to run from several workers at once."""
    landing = Path(landing or settings.LANDING_DIR)
    wanted = set(batches) if batches is not None else None
    own = conn is None
    conn = conn or connect()
    result = SyncResult()
    try:
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s)", (SYNC_LOCK_KEY,))
            conn.commit()
            try:
                with conn.transaction():
                    _ensure_bookkeeping(cur)
                cur.execute(f"select table_name, batch_id, fingerprint from {_relation(LOAD_LOG)}")
                logged = {(t, b): f for t, b, f in cur.fetchall()}
                files = _landed_files(landing, wanted)
                todo: dict[str, list[tuple[str, Path]]] = {}
                for (table, batch), path in files.items():
                    if logged.get((table, batch)) != _fingerprint(path):
                        todo.setdefault(batch, []).append((table, path))
                gone: dict[str, list[str]] = {}
                for table, batch in logged:
                    if (table, batch) not in files and (wanted is None or batch in wanted):
                        gone.setdefault(batch, []).append(table)
                touched = set()
                for batch in sorted(set(todo) | set(gone)):
                    with conn.transaction():
                        for table in gone.get(batch, []):
                            _delete_batch(cur, table, batch, _key(table))
                            result.removed.append((table, batch))
                            touched.add(table)
                        for table, path in todo.get(batch, []):
                            fingerprint = _fingerprint(path)
                            try:
                                with conn.transaction():  # a savepoint: a file that fails to read leaves no rows
                                    rows = _load_file(cur, table, path, batch, _key(table))
                            except (pa.ArrowException, OSError) as exc:  # the landing check quarantines it
                                print(f"WARNING: raw.{table} batch {batch}: {path} unreadable, not loaded: {exc}")
                                result.skipped.append(str(path))
                                continue
                            cur.execute(
                                f"insert into {_relation(LOAD_LOG)} (table_name, batch_id, fingerprint, row_count) "
                                "values (%s, %s, %s, %s) on conflict (table_name, batch_id) do update set "
                                "fingerprint = excluded.fingerprint, row_count = excluded.row_count, loaded_at = now()",
                                (table, batch, fingerprint, rows),
                            )
                            result.loaded.setdefault(batch, {})[table] = rows
                            touched.add(table)
                for table in sorted(touched):  # fresh planner statistics for the dbt run that follows
                    cur.execute(f"analyze {_relation(table)}")
                conn.commit()
            finally:
                cur.execute("select pg_advisory_unlock(%s)", (SYNC_LOCK_KEY,))
                conn.commit()
    finally:
        if own:
            conn.close()
    return result


def sync_if_postgres(batches: Iterable[str] | None = None) -> SyncResult | None:
    """The landing task's hook: on the Postgres target, load what landed; on DuckDB nothing (read in place)."""
    if not settings.IS_POSTGRES:
        return None
    result = sync(settings.LANDING_DIR, batches)
    print(f"raw schema of {settings.postgres_warehouse()}: {result.summary()}")
    return result


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "sync":
        print("usage: python -m include.vyapar.data.pg_raw sync [--landing DIR] [BATCH ...]", file=sys.stderr)
        return 2
    args = argv[1:]
    landing = settings.LANDING_DIR
    if args[:1] == ["--landing"]:
        landing, args = Path(args[1]), args[2:]
    try:
        result = sync(landing, args or None)
    except settings.WarehouseConnectionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
