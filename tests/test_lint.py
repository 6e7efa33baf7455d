"""The code passes the field's linters as configured here: ruff (with its Airflow rules, pyproject.toml) for the
Python, sqlfluff with the dbt templater (dbt/.sqlfluff) for the dbt SQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DBT_DIR = REPO_ROOT / "dbt"


def test_ruff_check_is_clean():
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ruff")), "check", "dags", "include", "plugins", "tests"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sqlfluff_lint_of_the_dbt_project_is_clean(tmp_path):
    # The dbt templater compiles the project: into a scratch target and an empty DuckDB file, so the lint never
    # touches dbt/target (Cosmos' manifest) or the warehouse's single-writer lock.
    env = {
        **os.environ,
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path / "logs"),
        "VYAPAR_DUCKDB_PATH": str(tmp_path / "lint.duckdb"),
        "VYAPAR_DBT_TARGET": "duckdb",
    }
    # Run from dbt/: sqlfluff honours `templater = dbt` only in the working directory's config.
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("sqlfluff")), "lint", "models", "macros", "tests"],
        cwd=DBT_DIR, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Project Compiled" in proc.stdout + proc.stderr, "the dbt templater did not run"
