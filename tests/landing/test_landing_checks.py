"""The landing contract check: bad raw files are named, quarantined (never deleted), good ones flow on."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from include.vyapar.data.datagen import generate_initial, land_next_batch
from include.vyapar.data.datagen.landing import LEDGER_DIR
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


def _scan(landing, table: str) -> int:
    """Rows of a raw table read as dbt's source reads it (every batch, union_by_name), every column decoded."""
    with duckdb.connect() as con:
        glob = str(landing / table / "*.parquet")
        con.execute(f"select max(hash(columns(*))) from read_parquet('{glob}', union_by_name = true)").fetchall()
        return con.execute(f"select count(*) from read_parquet('{glob}', union_by_name = true)").fetchone()[0]


def _as_epoch_ms(table: pa.Table, column: str) -> pa.Table:
    millis = pc.divide(pc.cast(table.column(column), pa.int64()), 1000)
    return table.set_column(table.schema.get_field_index(column), column, millis)


def _quarantined(landing, table: str) -> list[str]:
    return sorted(p.name for p in (landing / QUARANTINE_DIR / table).iterdir())


def test_duplicated_column_name_is_quarantined_and_the_files_after_it_are_still_checked(landing):
    path = landing / "customers" / "000000.parquet"  # customers is the first table checked
    table = pq.read_table(path)
    pq.write_table(pa.Table.from_arrays([*table.columns, table.column("email")], [*table.column_names, "email"]), path)
    (landing / "payments" / "000001.parquet").write_bytes(b"not parquet at all")

    with pytest.raises(BadRawDataError) as raised:
        check_landing(landing)
    message = str(raised.value)
    assert "raw table 'customers', batch 000000: duplicated column name(s) email in customers/000000.parquet" in message
    assert "raw table 'payments', batch 000001: unreadable Parquet file payments/000001.parquet" in message
    assert _quarantined(landing, "customers") == ["000000.parquet"]
    assert _quarantined(landing, "payments") == ["000001.parquet"]
    check_landing(landing)  # what remains is clean


def test_a_second_bad_file_of_the_same_name_never_overwrites_the_first_in_quarantine(landing):
    path = landing / "orders" / "000001.parquet"
    _rewrite(path, lambda t: t.drop_columns(["order_status"]))
    first = path.read_bytes()
    with pytest.raises(BadRawDataError, match=r"moved to _quarantine/orders/000001\.parquet"):
        check_landing(landing)
    path.write_bytes(b"still not right")  # the same batch lands bad again (or is put back unfixed)
    with pytest.raises(BadRawDataError, match=r"moved to _quarantine/orders/000001\.2\.parquet"):
        check_landing(landing)
    assert _quarantined(landing, "orders") == ["000001.2.parquet", "000001.parquet"]
    assert (landing / QUARANTINE_DIR / "orders" / "000001.parquet").read_bytes() == first
    assert (landing / QUARANTINE_DIR / "orders" / "000001.2.parquet").read_bytes() == b"still not right"


def test_timestamp_landed_as_epoch_milliseconds_is_quarantined_so_the_table_still_reads(landing):
    path = landing / "orders" / "000000.parquet"
    _rewrite(path, lambda t: _as_epoch_ms(t, "updated_at"))
    with pytest.raises(duckdb.ConversionException):  # what dbt's read of the orders source met
        _scan(landing, "orders")

    with pytest.raises(BadRawDataError) as raised:
        check_landing(landing)
    assert "raw table 'orders', batch 000000: column(s) updated_at as int64 in orders/000000.parquet" in str(
        raised.value
    )
    assert _quarantined(landing, "orders") == ["000000.parquet"]
    assert _scan(landing, "orders") == pq.read_metadata(landing / "orders" / "000001.parquet").num_rows


def _corrupt_a_data_page(path) -> None:
    """Overwrite the header of a column chunk's first data page; the footer stays intact."""
    row_group = pq.read_metadata(path).row_group(0)
    chunk = next(
        row_group.column(i) for i in range(row_group.num_columns) if row_group.column(i).path_in_schema == "event_type"
    )
    data = bytearray(path.read_bytes())
    data[chunk.data_page_offset : chunk.data_page_offset + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))


def test_corrupt_data_pages_under_an_intact_footer_are_quarantined_naming_the_file(landing):
    path = landing / "clickstream" / "000000.parquet"
    _corrupt_a_data_page(path)
    assert pq.read_metadata(path).num_rows > 0  # the footer reads
    with pytest.raises(duckdb.Error) as scan:
        _scan(landing, "clickstream")
    assert "000000.parquet" not in str(scan.value)  # dbt's scan fails without naming the file

    with pytest.raises(BadRawDataError, match=r"raw table 'clickstream', batch 000000: corrupt data in "
                                              r"clickstream/000000\.parquet"):  # fmt: skip
        check_landing(landing)
    assert _quarantined(landing, "clickstream") == ["000000.parquet"]
    assert _scan(landing, "clickstream") == pq.read_metadata(landing / "clickstream" / "000001.parquet").num_rows


FRESHNESS = "select max(_loaded_at) from read_parquet('{}/_batches/*.parquet') where table_name = 'orders'"


def test_a_bad_batch_ledger_file_is_quarantined_and_source_freshness_still_reads_the_ledger(landing):
    ledger = landing / LEDGER_DIR / "000001.parquet"
    _rewrite(ledger, lambda t: _as_epoch_ms(t, "_loaded_at"))
    (landing / LEDGER_DIR / "000002.parquet").write_bytes(b"PAR1 torn")
    with duckdb.connect() as con, pytest.raises(duckdb.Error):  # macro raw_batch_loaded_at's read on DuckDB
        con.execute(FRESHNESS.format(landing)).fetchall()

    with pytest.raises(BadRawDataError) as raised:
        check_landing(landing)
    message = str(raised.value)
    assert "batch ledger, batch 000001: column _loaded_at arrived as int64 in _batches/000001.parquet" in message
    assert "batch ledger, batch 000002: unreadable Parquet file _batches/000002.parquet" in message
    assert _quarantined(landing, LEDGER_DIR) == ["000001.parquet", "000002.parquet"]
    with duckdb.connect() as con:
        assert con.execute(FRESHNESS.format(landing)).fetchone()[0] == datetime(2026, 11, 26, 10)


def test_a_symlink_out_of_the_landing_folder_is_never_read_and_is_quarantined_as_a_link(landing, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside") / "elsewhere.parquet"
    outside.write_bytes((landing / "orders" / "000000.parquet").read_bytes())
    link = landing / "orders" / "000009.parquet"
    link.symlink_to(outside)
    with pytest.raises(BadRawDataError, match=rf"raw table 'orders', batch 000009: orders/000009\.parquet is a "
                                              rf"symbolic link to {outside}, outside the landing folder"):  # fmt: skip
        check_landing(landing)
    assert not link.exists() and not link.is_symlink()
    assert (landing / QUARANTINE_DIR / "orders" / "000009.parquet").is_symlink()  # moved as a link, not followed
    assert outside.exists()
    assert (
        _scan(landing, "orders")
        == pq.read_metadata(landing / "orders" / "000000.parquet").num_rows
        + pq.read_metadata(landing / "orders" / "000001.parquet").num_rows
    )


def test_a_table_folder_linked_out_of_the_landing_folder_fails_the_check(landing, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside_folder")
    (landing / "inventory").rename(outside / "inventory")
    (landing / "inventory").symlink_to(outside / "inventory")
    with pytest.raises(BadRawDataError, match=r"raw table 'inventory', batch \*: folder inventory/ is a symbolic link"):
        check_landing(landing)
    assert sorted(p.name for p in (outside / "inventory").iterdir()) == ["000000.parquet", "000001.parquet"]


def _loaded_at(path) -> set:
    return set(pq.read_table(path, columns=["_loaded_at"]).column(0).to_pylist())


def test_a_fixed_file_put_back_late_is_rechecked_and_restamped_with_the_newest_arrival(landing):
    path = landing / "clickstream" / "000000.parquet"
    original = pq.read_table(path)
    _rewrite(path, lambda t: t.drop_columns(["event_type"]))
    with pytest.raises(BadRawDataError):
        check_landing(landing)
    newest = land_next_batch(landing, hours=4)  # the fix takes longer than the models' 3-hour lookback
    pq.write_table(original, landing / QUARANTINE_DIR / "clickstream" / "000000.parquet")  # fixed in quarantine
    (landing / QUARANTINE_DIR / "clickstream" / "000000.parquet").rename(path)  # and moved back: a plain `mv`

    problems = check_landing(landing, batches=[newest["batch_id"]])  # as the hourly task checks: its new batch only
    assert [str(p) for p in problems if p.severity == "notice"] == [
        "NOTICE: raw table 'clickstream', batch 000000: clickstream/000000.parquet put back from quarantine: its rows' "
        "_loaded_at re-stamped 2026-11-26 10:00:00 -> 2026-11-26 15:00:00 (the newest arrival), so the next "
        "incremental run reads them"
    ]
    assert _loaded_at(path) == {datetime.fromisoformat(newest["loaded_at"])}
    assert pq.read_table(path).drop_columns(["_loaded_at"]).equals(original.drop_columns(["_loaded_at"]))
    assert b"vyapar.put_back" in pq.read_schema(path).metadata
    assert not [p for p in check_landing(landing, batches=[newest["batch_id"]]) if p.severity == "notice"]  # once


def test_a_file_put_back_still_broken_is_quarantined_again_beside_the_first(landing):
    path = landing / "payments" / "000000.parquet"
    _rewrite(path, lambda t: t.drop_columns(["payment_value"]))
    with pytest.raises(BadRawDataError):
        check_landing(landing)
    (landing / QUARANTINE_DIR / "payments" / "000000.parquet").rename(path)  # put back unfixed
    with pytest.raises(BadRawDataError, match=r"moved to _quarantine/payments/000000\.parquet"):
        check_landing(landing, batches=["000001"])
    assert not path.exists()
    fixed = pq.read_table(landing / QUARANTINE_DIR / "payments" / "000000.parquet")
    pq.write_table(fixed.append_column("payment_value", pa.array([1.0] * len(fixed))), path)
    assert [p.severity for p in check_landing(landing, batches=["000001"]) if p.batch == "000000"] == ["notice"]


def test_a_copy_put_back_from_a_quarantine_older_than_its_log_is_restamped_too(landing):
    """Quarantined before the log existed (or the log lost): a file still in _quarantine/ and copied back."""
    quarantined = landing / QUARANTINE_DIR / "orders" / "000000.parquet"
    quarantined.parent.mkdir(parents=True)
    quarantined.write_bytes((landing / "orders" / "000000.parquet").read_bytes())
    problems = check_landing(landing, batches=["000001"])
    assert [(p.table, p.batch, p.severity) for p in problems if p.severity == "notice"] == [
        ("orders", "000000", "notice")
    ]
    assert _loaded_at(landing / "orders" / "000000.parquet") == {datetime(2026, 11, 26, 11)}
    assert not [p for p in check_landing(landing, batches=["000001"]) if p.severity == "notice"]
