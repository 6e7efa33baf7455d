"""The runtime's tests share the real-Airflow fixtures of tests/dags (a migrated metadata DB, raw data, layer runs)."""

from tests.dags.conftest import airflow_db, layer_runs, raw_landing  # noqa: F401 -- fixtures
