"""The DAGs this folder's tests build in-process run in Cosmos' local execution, as `airflow dags test` runs them."""

from __future__ import annotations

import pytest

from tests.airflow_runs import PER_MODEL_EXECUTION


@pytest.fixture(scope="module", autouse=True)
def per_model_execution():
    """The DAGs this folder's tests build in-process: local execution, as `airflow dags test` runs them."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in PER_MODEL_EXECUTION.items():
            mp.setenv(name, value)
        yield
