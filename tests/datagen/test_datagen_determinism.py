"""Same (seed, scale, as_of) gives the same data; row counts follow the scale."""

from __future__ import annotations

import hashlib

import pytest

from include.vyapar.data.datagen import TABLES, generate_initial, land_next_batch
from tests.datagen.conftest import AS_OF, SMALL_SCALE


def _fingerprint(landing) -> dict[str, str]:
    return {
        str(path.relative_to(landing)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(landing.rglob("*.parquet"))
    }


def _land(landing, seed: int) -> dict[str, str]:
    generate_initial(landing, scale=SMALL_SCALE, seed=seed, as_of=AS_OF, progress=False)
    land_next_batch(landing, hours=2)
    return _fingerprint(landing)


def test_same_seed_gives_identical_data(tmp_path):
    first, second = _land(tmp_path / "first", seed=11), _land(tmp_path / "second", seed=11)
    assert len(first) == 3 * (len(TABLES) + 1)  # every table plus the batch ledger, per batch
    assert first == second


def test_different_seed_differs(tmp_path):
    first, second = _land(tmp_path / "first", seed=11), _land(tmp_path / "second", seed=12)
    differing = {path for path in first if first[path] != second[path]}
    assert {"customers/000000.parquet", "orders/000000.parquet", "clickstream/000000.parquet"} <= differing


def test_force_rebuilds_the_same_history(tmp_path):
    generate_initial(tmp_path, scale=SMALL_SCALE, seed=3, as_of=AS_OF, progress=False)
    before = _fingerprint(tmp_path)
    generate_initial(tmp_path, scale=SMALL_SCALE, seed=3, as_of=AS_OF, force=True, progress=False)
    assert _fingerprint(tmp_path) == before


def test_row_counts_scale_linearly(tmp_path):
    small = generate_initial(tmp_path / "small", scale=0.1, as_of=AS_OF, progress=False)
    large = generate_initial(tmp_path / "large", scale=0.4, as_of=AS_OF, progress=False)
    assert small["clickstream"] == 10_000 and large["clickstream"] == 40_000  # exact, benchmarks quote it
    assert small["orders"] == 2_000 and large["orders"] == 8_000
    assert small["customers"] == 500 and large["customers"] == 2_000
    assert small["products"] == 50 and large["products"] == 200
    for table in ("order_items", "payments", "product_reviews", "inventory"):
        assert large[table] / small[table] == pytest.approx(4, rel=0.15), table


def test_tiny_scales_keep_a_usable_catalogue(tmp_path):
    counts = generate_initial(tmp_path, scale=0.01, as_of=AS_OF, days=30, progress=False)
    assert counts["products"] == 30 and counts["email_campaigns"] >= 5
    assert counts["inventory"] == 30 * 30
