"""Session fixture: generated history at scale 0.05 built once with `dbt build`, shared by the dbt tests."""

from __future__ import annotations

import pytest
from warehouse_harness import DbtResult, Warehouse


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> tuple[Warehouse, DbtResult]:
    """Generated history at scale 0.05, then one full `dbt build` (models, data tests, unit tests)."""
    wh = Warehouse(tmp_path_factory.mktemp("dbt_build"))
    wh.land_initial()
    result = wh.dbt("build", check=False)
    return wh, result


@pytest.fixture(scope="session")
def warehouse(built) -> Warehouse:
    wh, result = built
    if result.returncode != 0:
        pytest.fail(f"dbt build failed:\n{result.output[-6000:]}")
    return wh
