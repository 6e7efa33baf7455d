"""Checks every landed raw file against the landing contract before dbt reads it; quarantines unusable files.

Problems name the table, the batch and what is wrong. A file dbt cannot use safely (unreadable, a contract
column missing) is moved to `<landing>/_quarantine/<table>/`, never deleted, so nothing is lost and the good
batches keep flowing; it can be fixed and moved back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from include.vyapar.data.datagen.schema import TABLES, landed_schema

QUARANTINE_DIR = "_quarantine"


@dataclass(frozen=True)
class LandingProblem:
    table: str
    batch: str
    severity: str  # "error": file quarantined; "warning": file kept, dbt tests will flag affected rows
    problem: str

    def __str__(self) -> str:
        return f"{self.severity.upper()}: raw table '{self.table}', batch {self.batch}: {self.problem}"


class BadRawDataError(RuntimeError):
    """At least one landed file broke the contract and was quarantined."""

    def __init__(self, problems: list[LandingProblem]):
        self.problems = problems
        super().__init__("bad raw data:\n" + "\n".join(f"  - {p}" for p in problems))


def _check_file(table: str, path: Path, contract: pa.Schema) -> list[LandingProblem]:
    batch = path.stem
    try:
        metadata = pq.read_metadata(path)
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a truncated or foreign file
        return [LandingProblem(table, batch, "error", f"unreadable Parquet file {path.name}: {exc}")]
    problems = []
    missing = [f.name for f in contract if f.name not in schema.names]
    if missing:
        problems.append(LandingProblem(table, batch, "error", f"missing column(s) {', '.join(missing)}"))
    extra = [name for name in schema.names if name not in contract.names]
    if extra:
        problems.append(
            LandingProblem(table, batch, "warning", f"new column(s) {', '.join(extra)} (not in the contract; ignored by staging)")
        )
    for field in contract:
        if field.name in schema.names and not schema.field(field.name).type.equals(field.type):
            problems.append(
                LandingProblem(
                    table, batch, "warning",
                    f"column {field.name} arrived as {schema.field(field.name).type}, contract says {field.type}; "
                    "values that do not parse become NULL and are flagged by the staging tests",
                )
            )  # fmt: skip
    if metadata.num_rows == 0 and not problems:
        problems.append(LandingProblem(table, batch, "info", "empty batch (no rows)"))
    return problems


def check_landing(
    landing_dir: Path, batches: list[str] | None = None, quarantine: bool = True
) -> list[LandingProblem]:
    """Check the given batches (default: every file) of every table; quarantine files with errors.

    Raises BadRawDataError naming each quarantined file's table and problem; returns warnings and infos.
    """
    landing_dir = Path(landing_dir)
    problems: list[LandingProblem] = []
    quarantined: list[LandingProblem] = []
    for table in TABLES:
        contract = landed_schema(table)
        for path in sorted((landing_dir / table).glob("*.parquet")):
            if batches is not None and path.stem not in batches:
                continue
            found = _check_file(table, path, contract)
            problems.extend(found)
            if quarantine and any(p.severity == "error" for p in found):
                target = landing_dir / QUARANTINE_DIR / table / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
                quarantined.extend(p for p in found if p.severity == "error")
    for p in problems:
        if p.severity != "info":
            print(p)
    if quarantined:
        raise BadRawDataError(quarantined)
    return problems
