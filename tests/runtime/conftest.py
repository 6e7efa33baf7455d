"""The runtime's tests use the shared real-Airflow fixtures of tests/airflow_runs.py (metadata DB, raw data, layer runs)."""

from pathlib import Path


def tiny_dbt_project(root: Path, models: dict[str, str]) -> tuple[Path, Path]:
    """A dbt project of the given models on its own DuckDB file: (project folder, warehouse file)."""
    project, warehouse = root / "project", root / "w.duckdb"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: probe\nversion: '1.0'\nprofile: probe\n")
    (project / "profiles.yml").write_text(
        f"probe:\n  target: d\n  outputs:\n    d:\n      type: duckdb\n      path: {warehouse}\n      threads: 1\n"
    )
    for name, sql in models.items():
        (project / "models" / f"{name}.sql").write_text(sql)
    return project, warehouse
