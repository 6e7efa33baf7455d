"""Runs the real dbt CLI against a private landing folder and DuckDB file, fed by the data generator."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # `include` is imported from the repo root
    sys.path.insert(0, str(REPO_ROOT))
DBT_PROJECT_DIR = REPO_ROOT / "dbt"
DBT_BIN = Path(sys.executable).with_name("dbt")
SCALE, SEED = 0.05, 7
PARTIAL_PARSE = "partial_parse.msgpack"
# This worker's partial parses, one per DuckDB file name (the profile dbt checks): tests/conftest.py's session folder
_PARTIAL_PARSES = Path(os.environ.get("VYAPAR_DATA_DIR", "/tmp")) / "harness-partial-parses"
AS_OF = "2026-11-26T10:00:00"
TABLES = (
    "customers",
    "products",
    "orders",
    "order_items",
    "payments",
    "clickstream",
    "inventory",
    "product_reviews",
    "email_campaigns",
    "email_events",
)


@dataclass
class DbtResult:
    returncode: int
    output: str
    target_path: Path

    def json(self, name: str) -> dict:
        return json.loads((self.target_path / name).read_text())


@dataclass
class Warehouse:
    """One landing folder + one DuckDB file + private dbt target/log folders."""

    root: Path

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def duckdb_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    def env(self, duckdb_path: Path | None = None) -> dict[str, str]:
        """dbt's environment; the DuckDB file is named relative to the folder dbt runs in (`dbt()`): every warehouse's
        profile is then the same, and one partial parse serves them all (an absolute path is part of the profile dbt
        checks, and a changed profile means a full parse: 2.5-3 s a call)."""
        from include.vyapar.settings import dbt_env

        return {
            **os.environ,
            **dbt_env(),
            "VYAPAR_DUCKDB_PATH": (duckdb_path or self.duckdb_path).name,
            "VYAPAR_LANDING_DIR": str(self.landing),
            "VYAPAR_DBT_TARGET": "duckdb",
            "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        }

    def dbt(self, *args: str, duckdb_path: Path | None = None, check: bool = True) -> DbtResult:
        database = duckdb_path or self.duckdb_path
        target = self.root / "target"
        seed = _PARTIAL_PARSES / database.name / PARTIAL_PARSE
        if seed.exists():  # the worker's latest parse with this profile (the project does not change in a session)
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(seed, target / PARTIAL_PARSE)
        cmd = [
            str(DBT_BIN),
            *args,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--log-path",
            str(self.root / "logs"),
        ]
        proc = subprocess.run(
            cmd, env=self.env(duckdb_path), capture_output=True, text=True, check=False, cwd=database.parent
        )
        result = DbtResult(proc.returncode, proc.stdout + proc.stderr, target)
        if (target / PARTIAL_PARSE).exists():
            seed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(target / PARTIAL_PARSE, seed.with_suffix(".tmp"))
            os.replace(seed.with_suffix(".tmp"), seed)
        if check and proc.returncode != 0:
            raise AssertionError(f"`dbt {' '.join(args)}` failed ({proc.returncode}):\n{result.output[-6000:]}")
        return result

    def land_initial(self, as_of: str | datetime = AS_OF, scale: float = SCALE, seed: int = SEED) -> None:
        from include.vyapar.data.datagen import generate_initial

        generate_initial(self.landing, scale=scale, seed=seed, as_of=as_of, progress=False)

    def arrive(self, hours: int = 1, at: str | datetime | None = None) -> dict:
        from include.vyapar.data.datagen import land_next_batch

        return land_next_batch(self.landing, at=at, hours=1 if at else hours)

    def raw(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB with one view per raw table over the landed Parquet files."""
        con = duckdb.connect()
        for table in TABLES:
            con.execute(
                f"create view raw_{table} as select * from read_parquet("
                f"'{self.landing}/{table}/*.parquet', union_by_name = true)"
            )
        return con

    def warehouse(self, duckdb_path: Path | None = None) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(duckdb_path or self.duckdb_path), read_only=True)


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()
