"""The landing contract check: bad raw files are named, quarantined (never deleted), good ones flow on."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.vyapar.data.datagen import generate_initial, land_next_batch
from include.vyapar.data.landing_checks import QUARANTINE_DIR, BadRawDataError, check_landing


@pytest.fixture
def landing(tmp_path):
    generate_initial(tmp_path, scale=0.02, seed=3, as_of="2026-11-26T10:00:00", progress=False)
    land_next_batch(tmp_path)
    return tmp_path


def _rewrite(path, transform):
    table = pq.read_table(path)
    pq.write_table(transform(table), path)


def test_generated_batches_pass_the_contract(landing):
    problems = check_landing(landing)
    assert [p for p in problems if p.severity != "info"] == []
    assert any(p.problem == "empty batch (no rows)" and p.table == "products" for p in problems)


def test_dropped_column_is_quarantined_and_named(landing):
    path = landing / "orders" / "000001.parquet"
    _rewrite(path, lambda t: t.drop_columns(["order_status"]))
    with pytest.raises(BadRawDataError, match=r"raw table 'orders', batch 000001: missing column\(s\) order_status"):
        check_landing(landing)
    assert not path.exists()
    assert (landing / QUARANTINE_DIR / "orders" / "000001.parquet").exists()
    assert (landing / "orders" / "000000.parquet").exists()
    check_landing(landing)  # what remains is clean


def test_new_column_warns_and_keeps_the_file(landing):
    path = landing / "clickstream" / "000001.parquet"
    _rewrite(path, lambda t: t.append_column("app_version", pa.array(["7.1"] * len(t))))
    problems = check_landing(landing)
    assert [str(p) for p in problems if p.severity == "warning"] == [
        "WARNING: raw table 'clickstream', batch 000001: new column(s) app_version (not in the contract; ignored by staging)"
    ]
    assert path.exists()


def test_timestamp_arriving_as_text_warns(landing):
    path = landing / "customers" / "000000.parquet"
    _rewrite(path, lambda t: t.set_column(t.schema.get_field_index("signup_at"), "signup_at",
                                          pa.array([str(v) for v in t.column("signup_at").to_pylist()])))  # fmt: skip
    problems = [p for p in check_landing(landing) if p.severity == "warning"]
    assert len(problems) == 1 and "signup_at arrived as string" in problems[0].problem


def test_unreadable_file_is_quarantined(landing):
    (landing / "payments" / "000002.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(BadRawDataError, match="raw table 'payments', batch 000002: unreadable Parquet file"):
        check_landing(landing)
    assert (landing / QUARANTINE_DIR / "payments" / "000002.parquet").read_bytes() == b"not parquet at all"


def test_only_the_given_batches_are_checked(landing):
    (landing / "payments" / "000000.parquet").write_bytes(b"broken")
    assert check_landing(landing, batches=["000001"]) is not None
    assert (landing / "payments" / "000000.parquet").exists()
