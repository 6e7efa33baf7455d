"""Checks every landed raw file and the batch ledger against the landing contract before dbt reads them: a file dbt
cannot use is quarantined (never overwritten or deleted) and named, the others still checked; a fixed file put back
is checked again and re-stamped with the newest arrival, so the incremental models read it (docs/runbooks.md).
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from include.vyapar.data.datagen.landing import LEDGER_DIR, LEDGER_SCHEMA
from include.vyapar.data.datagen.schema import TABLES, landed_schema

QUARANTINE_DIR = "_quarantine"
# What was quarantined and put back, one JSON object a line: how a put-back is recognised after a plain `mv`.
QUARANTINE_LOG = "quarantine_log.jsonl"
LOADED_AT = "_loaded_at"
# Data pages are read (not only footers) for the named batches, put-backs, and, when every file is checked,
# files that arrived within this long of the newest: the incremental models' lookback (3 h) with margin.
DEEP_READ_WINDOW = timedelta(hours=24)
PUT_BACK_METADATA = b"vyapar.put_back"


@dataclass(frozen=True)
class LandingProblem:
    table: str
    batch: str
    # "error": file quarantined; "warning": file kept, dbt tests will flag affected rows;
    # "notice": a put-back file was accepted and re-stamped; "info": nothing to do
    severity: str
    problem: str

    def __str__(self) -> str:
        where = "batch ledger" if self.table == LEDGER_DIR else f"raw table '{self.table}'"
        return f"{self.severity.upper()}: {where}, batch {self.batch}: {self.problem}"


class BadRawDataError(RuntimeError):
    """At least one landed file broke the contract and was quarantined."""

    def __init__(self, problems: list[LandingProblem]):
        self.problems = problems
        super().__init__("bad raw data:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass
class _Landed:
    """One file in the check's scope and what its footer told."""

    table: str
    path: Path
    contract: pa.Schema
    put_back: bool
    problems: list[LandingProblem] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)  # contract columns that arrived with another type
    newest: datetime | None = None  # newest _loaded_at, from the footer's statistics

    @property
    def name(self) -> str:
        return f"{self.table}/{self.path.name}"

    @property
    def failed(self) -> bool:
        return any(p.severity == "error" for p in self.problems)

    def add(self, severity: str, problem: str) -> None:
        self.problems.append(LandingProblem(self.table, self.path.stem, severity, problem))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _newest_loaded_at(metadata: pq.FileMetaData) -> datetime | None:
    newest = None
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for column in range(row_group.num_columns):
            chunk = row_group.column(column)
            if chunk.path_in_schema != LOADED_AT:
                continue
            stats = chunk.statistics
            if stats is None or not stats.has_min_max or not isinstance(stats.max, datetime):
                return None
            newest = stats.max if newest is None else max(newest, stats.max)
    return newest


def _check_footer(landed: _Landed, root: Path) -> None:
    """Symlinks, readability and the schema, from the footer alone."""
    path, ledger = landed.path, landed.table == LEDGER_DIR
    if path.is_symlink():
        target = path.resolve()
        if not _inside(target, root) or _inside(target, root / QUARANTINE_DIR):
            landed.add("error", f"{landed.name} is a symbolic link to {os.readlink(path)}, outside the landing "
                                "folder: not read")  # fmt: skip
            return
    try:
        parquet = pq.ParquetFile(path)
        schema, metadata = parquet.schema_arrow, parquet.metadata
    except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
        landed.add("error", f"unreadable Parquet file {landed.name}: {exc}")
        return
    names = schema.names
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        landed.add("error", f"duplicated column name(s) {', '.join(duplicated)} in {landed.name}: which one is "
                            "meant cannot be told")  # fmt: skip
    contract = landed.contract
    missing = [f.name for f in contract if f.name not in names]
    if missing:
        landed.add("error", f"missing column(s) {', '.join(missing)} in {landed.name}")
    extra = [name for name in names if name not in contract.names]
    if extra and ledger:
        landed.add("error", f"unexpected column(s) {', '.join(extra)} in {landed.name}")
    elif extra:
        landed.add("warning", f"new column(s) {', '.join(extra)} (not in the contract; ignored by staging)")
    for expected in contract:
        if names.count(expected.name) != 1:
            continue
        arrived = schema.field(expected.name).type
        if arrived.equals(expected.type):
            continue
        landed.mismatched.append(expected.name)
        if ledger:
            landed.add("error", f"column {expected.name} arrived as {arrived} in {landed.name}, the ledger's "
                                f"contract says {expected.type}")  # fmt: skip
        else:
            landed.add("warning", f"column {expected.name} arrived as {arrived}, contract says {expected.type}; "
                                  "values that do not parse become NULL and are flagged by the staging tests")  # fmt: skip
    landed.newest = _newest_loaded_at(metadata)
    if metadata.num_rows == 0 and not landed.problems:
        landed.add("info", "empty batch (no rows)")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


class _DuckDBReader:
    """Reads files as dbt's sources do: every data page, and together with a file of the contract's types."""

    def __init__(self, scratch: Path):
        self.connection = duckdb.connect()
        self.scratch = scratch
        self.references: dict[str, Path] = {}

    def _reference(self, landed: _Landed) -> Path:
        if landed.table not in self.references:
            reference = self.scratch / f"{landed.table}.parquet"
            pq.write_table(landed.contract.empty_table(), reference)
            self.references[landed.table] = reference
        return self.references[landed.table]

    def check(self, landed: _Landed) -> None:
        try:
            self.connection.execute("select max(hash(columns(*))) from read_parquet(?)", [str(landed.path)]).fetchall()
        except duckdb.Error as exc:
            landed.add("error", f"corrupt data in {landed.name}: its footer reads but DuckDB cannot read its data "
                                f"pages ({_first_line(exc)})")  # fmt: skip
            return
        if not landed.mismatched or landed.table == LEDGER_DIR:
            return
        try:  # dbt reads a table's files with union_by_name: this file's types must combine with the contract's
            self.connection.execute(
                "select max(hash(columns(*))) from read_parquet(?, union_by_name = true)",
                [[str(self._reference(landed)), str(landed.path)]],
            ).fetchall()
        except duckdb.Error as exc:
            types = ", ".join(f"{c} as {pq.read_schema(landed.path).field(c).type}" for c in landed.mismatched)
            landed.problems[:] = [
                p for p in landed.problems if p.severity != "warning" or "arrived as" not in p.problem
            ]
            landed.add("error", f"column(s) {types} in {landed.name} (contract: "
                                f"{', '.join(f'{c} {landed.contract.field(c).type}' for c in landed.mismatched)}): "
                                f"DuckDB cannot read the file with the table's others ({_first_line(exc)})")  # fmt: skip

    def close(self) -> None:
        self.connection.close()


class _QuarantineLog:
    def __init__(self, root: Path):
        self.path = root / QUARANTINE_DIR / QUARANTINE_LOG

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        entries = []
        for line in self.path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                print(f"WARNING: {self.path}: skipping an unreadable line: {line[:200]!r}")
        return entries

    def pending(self) -> set[tuple[str, str]]:
        """(table, batch) of files quarantined and not put back since."""
        out: set[tuple[str, str]] = set()
        logged: set[tuple[str, str]] = set()
        for entry in self.entries():
            key = (entry.get("table"), entry.get("batch"))
            logged.add(key)
            if entry.get("event") == "quarantined":
                out.add(key)
            elif entry.get("event") == "put_back":
                out.discard(key)
        # files quarantined before this log existed: a copy of one put back is recognised too
        for table in (LEDGER_DIR, *TABLES):
            for path in (self.path.parent / table).glob("*.parquet"):
                if (table, path.stem) not in logged:
                    out.add((table, path.stem))
        return out

    def append(self, **entry) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"at": datetime.now(UTC).isoformat(timespec="seconds"), **entry}
        with self.path.open("a") as log:
            log.write(json.dumps(entry, sort_keys=True, default=str) + "\n")


def _move_to_quarantine(root: Path, landed: _Landed) -> Path:
    """Move the file (a symlink as the link itself) to _quarantine/<table>/, under a name no earlier file holds."""
    folder = root / QUARANTINE_DIR / landed.table
    folder.mkdir(parents=True, exist_ok=True)
    path = landed.path
    for number in itertools.count(1):
        target = folder / (path.name if number == 1 else f"{path.stem}.{number}{path.suffix}")
        try:  # claim the name: exclusive creation never replaces an earlier quarantined file
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue
        try:
            os.replace(path, target)
        except OSError:
            target.unlink(missing_ok=True)
            raise
        return target
    raise AssertionError("unreachable")


def _newest_in(paths) -> datetime | None:
    """The newest _loaded_at the footers of `paths` hold (an unreadable file is the check's to report, not this
    lookup's)."""
    newest = None
    for path in paths:
        try:
            found = _newest_loaded_at(pq.read_metadata(path))
        except Exception:
            continue
        if found is not None:
            newest = found if newest is None else max(newest, found)
    return newest


def _restamp(path: Path, loaded_at: datetime) -> tuple[datetime | None, datetime | None]:
    """Rewrite the file with every row's _loaded_at set to `loaded_at`; returns the range it held before."""
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    index = schema.get_field_index(LOADED_AT)
    stamp_type = landed_schema(TABLES[0]).field(LOADED_AT).type
    before: list[datetime] = []
    stamp = pa.scalar(loaded_at, stamp_type)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        for batch in parquet.iter_batches(columns=[LOADED_AT]):
            column = batch.column(0)
            if len(column) and pa.types.is_timestamp(column.type):
                low, high = pc.min_max(column).values()
                before += [v for v in (low.as_py(), high.as_py()) if v is not None]
        previous = (min(before), max(before)) if before else (None, None)
        note = {"put_back_at": datetime.now(UTC).isoformat(timespec="seconds"), "loaded_at_before": previous}
        stamped = schema.set(index, pa.field(LOADED_AT, stamp_type)).with_metadata(
            {**(schema.metadata or {}), PUT_BACK_METADATA: json.dumps(note, default=str).encode()}
        )
        with pq.ParquetWriter(temporary, stamped, compression="zstd") as writer:
            for batch in parquet.iter_batches():
                arrays = list(batch.columns)
                arrays[index] = pa.repeat(stamp, len(batch))
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=stamped))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return previous


def _landed_files(
    root: Path, batches: list[str] | None, pending: set[tuple[str, str]]
) -> tuple[list[_Landed], list[LandingProblem]]:
    files, problems = [], []
    real_root = root.resolve()
    for table, contract in [(LEDGER_DIR, LEDGER_SCHEMA)] + [(t, landed_schema(t)) for t in TABLES]:
        folder = root / table
        if not folder.exists():
            continue
        if not _inside(folder.resolve(), real_root):
            problems.append(LandingProblem(table, "*", "error", f"folder {table}/ is a symbolic link to "
                                           f"{folder.resolve()}, outside the landing folder: not read; make it a "
                                           "real folder"))  # fmt: skip
            continue
        for path in sorted(folder.glob("*.parquet")):
            put_back = (table, path.stem) in pending
            if batches is not None and path.stem not in batches and not put_back:
                continue
            files.append(_Landed(table, path, contract, put_back))
    return files, problems


def check_landing(landing_dir: Path, batches: list[str] | None = None, quarantine: bool = True) -> list[LandingProblem]:
    """Check the given batches (default: every file) of every table and of the ledger, plus any file put back
    from quarantine; quarantine files with errors, re-stamp accepted put-backs.

    Raises BadRawDataError naming each bad file and its problem, after every file was checked; returns warnings,
    notices and infos.
    """
    root = Path(landing_dir)
    log = _QuarantineLog(root)
    files, problems = _landed_files(root, batches, log.pending())
    for landed in files:
        try:
            _check_footer(landed, root.resolve())
        except Exception as exc:  # a check that breaks on one file must not stop the others' checks
            landed.add("error", f"{landed.name} could not be checked: {type(exc).__name__}: {exc}")
    _read_data_pages(files, every_file=batches is None)
    for landed in files:
        if landed.failed and quarantine:
            _quarantine(root, log, landed)
        elif landed.put_back and not landed.failed and quarantine:
            _accept_put_back(root, log, landed)
        problems.extend(landed.problems)
    for p in problems:
        if p.severity != "info":
            print(p)
    failed = [p for p in problems if p.severity == "error"]
    if failed:
        raise BadRawDataError(failed)
    return problems


def _read_data_pages(files: list[_Landed], every_file: bool) -> None:
    """DuckDB's read of the files whose footers passed: the named batches and put-backs, or, when every file is
    checked, those that arrived within DEEP_READ_WINDOW of the newest."""
    latest = max((f.newest for f in files if f.newest is not None and not f.failed), default=None)
    with tempfile.TemporaryDirectory(prefix="landing-check-") as scratch:
        reader = _DuckDBReader(Path(scratch))
        try:
            for landed in files:
                deep = not every_file or landed.put_back or landed.newest is None or latest is None
                if landed.failed or not (deep or landed.newest >= latest - DEEP_READ_WINDOW):
                    continue
                try:
                    reader.check(landed)
                except Exception as exc:
                    landed.add("error", f"{landed.name} could not be checked: {type(exc).__name__}: {exc}")
        finally:
            reader.close()


def _quarantine(root: Path, log: _QuarantineLog, landed: _Landed) -> None:
    """Move a failed file to quarantine and log it; its errors become one line ending with where it went."""
    try:
        target = _move_to_quarantine(root, landed)
    except OSError as exc:
        landed.add("error", f"{landed.name} could not be quarantined: {exc}")
        return
    errors = [p.problem for p in landed.problems if p.severity == "error"]
    log.append(event="quarantined", table=landed.table, batch=landed.path.stem,
               file=str(target.relative_to(root)), problems=errors)  # fmt: skip
    landed.problems[:] = [p for p in landed.problems if p.severity != "error"]
    landed.add("error", f"{'; '.join(errors)}; moved to {target.relative_to(root)}")


def _accept_put_back(root: Path, log: _QuarantineLog, landed: _Landed) -> None:
    """A fixed file is back: its rows arrive now, with the newest batch (see docs/runbooks.md#quarantine)."""
    if landed.table == LEDGER_DIR:
        log.append(event="put_back", table=landed.table, batch=landed.path.stem, file=landed.name)
        landed.add("notice", f"{landed.name} put back from quarantine: accepted")
        return
    # Not the wall clock: the extractor's clock stamps the arrivals, and a stamp ahead of the next arrivals
    # would move the models' lookback past them. The ledger's newest, and each table's newest files (batch ids sort
    # by arrival).
    ledger = (root / LEDGER_DIR).glob("*.parquet")
    latest_files = [
        path for table in TABLES for path in sorted((root / table).glob("*.parquet"))[-2:] if not path.is_symlink()
    ]
    arrivals = [t for t in (_newest_in(ledger), landed.newest, _newest_in(latest_files)) if t is not None]
    stamp = max(arrivals, default=datetime.now(UTC).replace(tzinfo=None, microsecond=0))
    before = _restamp(landed.path, stamp)
    log.append(event="put_back", table=landed.table, batch=landed.path.stem, file=landed.name,
               loaded_at_before=before, loaded_at=stamp)  # fmt: skip
    landed.add("notice", f"{landed.name} put back from quarantine: its rows' _loaded_at re-stamped "
                         f"{before[1]} -> {stamp} (the newest arrival), so the next incremental run reads them")  # fmt: skip
