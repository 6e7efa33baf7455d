"""The same dbt project, unchanged, on PostgreSQL: raw batches loaded by pg_raw, the full `dbt build` green on both
warehouses with the same rows, and the Postgres profile built by Cosmos from an Airflow connection.

Needs a PostgreSQL server: VYAPAR_TEST_PG_URL (default postgresql://postgres@127.0.0.1:5432/postgres), a role
that may create databases. Every test works in a database of its own (vyapar_pg_test_<random>), dropped after.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from warehouse_harness import AS_OF, DBT_BIN, DBT_PROJECT_DIR, TABLES, DbtResult, Warehouse, rows

from include.vyapar import settings
from include.vyapar.data import pg_raw
from include.vyapar.data.datagen import table_row_counts
from tests.conftest import ARTIFACTS

ADMIN_URL = os.environ.get("VYAPAR_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Trust auth ignores it; it is there so the tests can check that no log shows it.
PASSWORD = "pw-" + secrets.token_hex(8)
LAYER_SCHEMAS = ("staging", "intermediate", "core", "marts", "ml")


def _admin() -> psycopg.Connection:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


try:
    _admin().close()
    _PG_ERROR = None
except psycopg.OperationalError as exc:
    _PG_ERROR = str(exc)
pytestmark = pytest.mark.skipif(_PG_ERROR is not None, reason=f"no PostgreSQL server at {ADMIN_URL}: {_PG_ERROR}")


class PgDatabase:
    """A fresh database on the test server and the Airflow connection URI that names it."""

    def __init__(self, name: str):
        self.name = name
        url = urlsplit(ADMIN_URL)
        user = url.username or "postgres"
        netloc = f"{user}:{PASSWORD}@{url.hostname or '127.0.0.1'}:{url.port or 5432}"
        self.conn_uri = urlunsplit(("postgresql", netloc, f"/{name}", "", ""))

    def env(self) -> dict[str, str]:
        """What a deployment sets: the target and the connection, nothing else."""
        return {"VYAPAR_DBT_TARGET": "postgres", f"AIRFLOW_CONN_{settings.WAREHOUSE_CONN_ID.upper()}": self.conn_uri}

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.conn_uri, autocommit=True)

    def scalar(self, sql: str, *params):
        with self.connect() as con:
            return con.execute(sql, params or None).fetchone()[0]


@pytest.fixture
def pg_database() -> Iterator[PgDatabase]:
    yield from _database()


@pytest.fixture(scope="module")
def pg_module_database() -> Iterator[PgDatabase]:
    yield from _database()


def _database() -> Iterator[PgDatabase]:
    db = PgDatabase(f"vyapar_pg_test_{secrets.token_hex(4)}")
    with _admin() as con:
        con.execute(f'create database "{db.name}"')
    try:
        yield db
    finally:
        with _admin() as con:
            con.execute(f'drop database if exists "{db.name}" with (force)')


def _sync(db: PgDatabase, landing: Path, batches=None) -> pg_raw.SyncResult:
    with pytest.MonkeyPatch.context() as mp:
        for key, value in db.env().items():
            mp.setenv(key, value)
        return pg_raw.sync(landing, batches)


def _pg_env(db: PgDatabase) -> dict[str, str]:
    """VYAPAR_PG_* for dbt/profiles.yml, derived from the Airflow connection as settings.dbt_cli_env() does."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in db.env().items():
            mp.setenv(key, value)
        return settings.postgres_warehouse().dbt_env()


def _dbt_pg(wh: Warehouse, db: PgDatabase, *args: str, env: dict[str, str] | None = None) -> DbtResult:
    """The dbt CLI on the postgres target, its VYAPAR_PG_* derived from the Airflow connection (as in warehouse.py)."""
    target = wh.root / "target_pg"
    env = {**wh.env(), **db.env(), **(env or _pg_env(db))}
    cmd = [str(DBT_BIN), *args, "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
           "--target-path", str(target), "--log-path", str(wh.root / "logs_pg")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, cwd=DBT_PROJECT_DIR)
    return DbtResult(proc.returncode, proc.stdout + proc.stderr, target)


def _statuses(result: DbtResult) -> dict[str, str]:
    return {r["unique_id"]: r["status"] for r in result.json("run_results.json")["results"]}


def _models(result: DbtResult) -> list[tuple[str, str]]:
    manifest = result.json("manifest.json")
    return sorted(
        (n["schema"], n["alias"]) for n in manifest["nodes"].values() if n["resource_type"] == "model"
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- full build on both


@pytest.fixture(scope="module")
def both_built(tmp_path_factory, pg_module_database):
    """The same landed history (initial load + 2 hourly batches) built by `dbt build` on DuckDB and on Postgres."""
    wh = Warehouse(tmp_path_factory.mktemp("pg_vs_duckdb"))
    wh.land_initial()
    wh.arrive(hours=2)
    timings = {}
    started = time.monotonic()
    loaded = _sync(pg_module_database, wh.landing)
    timings["postgres_load_seconds"] = time.monotonic() - started
    pg_env = _pg_env(pg_module_database)

    def timed(name, build):
        started = time.monotonic()
        result = build()
        timings[name] = time.monotonic() - started
        return result

    # One after the other: on a small machine side by side is slower, and the timings are comparable.
    duck = timed("duckdb_build_seconds", lambda: wh.dbt("build", check=False))
    pg = timed("postgres_build_seconds", lambda: _dbt_pg(wh, pg_module_database, "build", env=pg_env))
    return wh, duck, pg, loaded, timings


def test_raw_schema_holds_every_landed_row(both_built, pg_module_database):
    wh, _, _, loaded, _ = both_built
    assert loaded.batches == ["000000", "000001", "000002"] and not loaded.skipped
    for table, count in table_row_counts(wh.landing).items():
        assert pg_module_database.scalar(f"select count(*) from raw.{table}") == count, table
    assert pg_module_database.scalar("select count(*) from raw._batches") == 3 * len(TABLES)


def test_full_build_passes_on_postgres_and_duckdb_alike(both_built):
    _, duck, pg, _, _ = both_built
    assert duck.returncode == 0, duck.output[-6000:]
    assert pg.returncode == 0, pg.output[-6000:]
    duck_status, pg_status = _statuses(duck), _statuses(pg)
    assert set(pg_status.values()) <= {"success", "pass", "warn"}, {
        k: v for k, v in pg_status.items() if v not in {"success", "pass", "warn"}
    }
    # Every model, data test and unit test ran on both, with the same outcome (the same warn-level findings).
    assert pg_status == duck_status
    assert sum(uid.startswith("unit_test.") for uid in pg_status) >= 3
    assert sum(uid.startswith("model.") for uid in pg_status) == 28


def test_every_model_has_the_same_rows_on_both(both_built, pg_module_database):
    wh, duck, pg, _, timings = both_built
    counts = {}
    with wh.warehouse() as duck_con, pg_module_database.connect() as pg_con:
        for schema, name in _models(pg):
            relation = f'"{schema}"."{name}"'
            counts[f"{schema}.{name}"] = (
                rows(duck_con, f"select count(*) from {relation}")[0][0],
                pg_con.execute(f"select count(*) from {relation}").fetchone()[0],
            )
    different = {k: v for k, v in counts.items() if v[0] != v[1]}
    assert not different, different
    assert all(duck_count > 0 for duck_count, _ in counts.values()), counts
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "postgres_vs_duckdb.json").write_text(
        json.dumps({"timings": timings, "rows": {k: v[0] for k, v in counts.items()}}, indent=2) + "\n"
    )


KEY_FIGURES = {
    "mart_daily_sales": "select sum(revenue), sum(order_count), sum(gross_profit), sum(units_sold) from marts.mart_daily_sales",
    "mart_financial_metrics": "select sum(revenue), sum(new_customer_count), sum(cost_of_goods_sold) from marts.mart_financial_metrics",
    "mart_product_performance": "select sum(revenue), sum(profit), sum(product_views) from marts.mart_product_performance",
    "mart_campaign_performance": "select sum(attributed_revenue), sum(unique_opens) from marts.mart_campaign_performance",
    "mart_customer_overview": "select sum(total_spend), sum(website_visits), count(distinct rfm_segment) from marts.mart_customer_overview",
    "mart_inventory_status": "select sum(stock_value_at_cost), sum(case when needs_reorder then 1 else 0 end) from marts.mart_inventory_status",
    "dim_date": "select sum(day_of_week), sum(case when is_weekend then 1 else 0 end) from core.dim_date",
    "fct_orders": "select sum(amount_billed), sum(delivery_days), sum(case when is_delivered_late then 1 else 0 end) from core.fct_orders",
    "ml_customer_features": "select sum(recency_days), sum(monetary_total_spend) from ml.ml_customer_features",
}


@pytest.mark.parametrize("model", sorted(KEY_FIGURES))
def test_key_figures_agree(both_built, pg_module_database, model):
    wh, duck, pg, _, _ = both_built
    assert duck.returncode == 0 and pg.returncode == 0
    sql = KEY_FIGURES[model]
    with wh.warehouse() as duck_con:
        expected = rows(duck_con, sql)[0]
    with pg_module_database.connect() as pg_con:
        actual = pg_con.execute(sql).fetchone()
    for e, a in zip(expected, actual, strict=True):
        assert e is not None and a is not None, (expected, actual)
        assert abs(Decimal(str(e)) - Decimal(str(a))) <= Decimal("0.01"), (model, expected, actual)


def test_segments_agree(both_built, pg_module_database):
    wh, *_ = both_built
    sql = "select segment, count(*) from ml.ml_customer_segments group by 1 order by 1"
    sql2 = "select rfm_segment, lifecycle_stage, count(*) from marts.mart_customer_overview group by 1, 2 order by 1, 2"
    with wh.warehouse() as duck_con, pg_module_database.connect() as pg_con:
        for q in (sql, sql2):
            assert [tuple(r) for r in rows(duck_con, q)] == [tuple(r) for r in pg_con.execute(q).fetchall()]


# ------------------------------------------------------------------------------------------------- the loader


def _write(landing: Path, table: str, batch: str, columns: dict) -> None:
    loaded_at = datetime.fromisoformat(AS_OF)
    n = len(next(iter(columns.values())))
    columns = {**columns, "_loaded_at": pa.array([loaded_at] * n, pa.timestamp("us")), "_batch_id": [batch] * n}
    pq.write_table(pa.table(columns), landing / table / f"{batch}.parquet")


def _event(event_id: str, timestamp, **extra) -> dict:
    base = {
        "event_id": [event_id], "session_id": ["s-pg"], "customer_id": [None], "event_timestamp": [timestamp],
        "event_type": ["page_view"], "page_type": ["home"], "product_id": [None], "device": ["mobile"],
        "browser": ["chrome"], "utm_source": [None],
    }  # fmt: skip
    return {**base, **{k: [v] for k, v in extra.items()}}


def test_reloading_a_batch_replaces_it_and_new_columns_are_added(tmp_path, pg_database):
    wh = Warehouse(tmp_path)
    wh.land_initial(scale=0.01)
    wh.arrive(hours=1)
    first = _sync(pg_database, wh.landing)
    assert first.batches == ["000000", "000001"]
    landed = table_row_counts(wh.landing)

    def raw_counts() -> dict[str, int]:
        return {t: pg_database.scalar(f"select count(*) from raw.{t}") for t in TABLES}

    assert raw_counts() == landed
    # Nothing new: nothing loaded.
    assert _sync(pg_database, wh.landing).loaded == {}
    # The extractor re-sends batch 000001 (same content, new file): it replaces the batch, no duplicates.
    orders_file = wh.landing / "orders" / "000001.parquet"
    pq.write_table(pq.read_table(orders_file), orders_file)
    again = _sync(pg_database, wh.landing, ["000001"])
    assert again.batches == ["000001"] and set(again.loaded["000001"]) == {"orders"}
    assert raw_counts() == landed
    # ... and a corrected re-send of the initial load with one row fewer replaces it too.
    initial_orders = wh.landing / "orders" / "000000.parquet"
    smaller = pq.read_table(initial_orders)
    pq.write_table(smaller.slice(1), initial_orders)
    _sync(pg_database, wh.landing)
    assert pg_database.scalar("select count(*) from raw.orders") == landed["orders"] - 1
    assert pg_database.scalar("select count(*) from raw.orders where _batch_id = '000000'") == smaller.num_rows - 1

    # A batch that brings a new column adds it; the earlier rows read null there.
    _write(wh.landing, "clickstream", "000002", _event("ev-new-col", datetime.fromisoformat(AS_OF), app_version="7.1"))
    _sync(pg_database, wh.landing)
    assert pg_database.scalar("select count(app_version) from raw.clickstream") == 1
    assert pg_database.scalar("select app_version from raw.clickstream where event_id = 'ev-new-col'") == "7.1"
    # A batch whose timestamp column arrived as text: the column is widened (DuckDB unions it as varchar too),
    # and staging's dbt.safe_cast yields null for the unparsable value instead of aborting the run.
    _write(wh.landing, "clickstream", "000003", _event("ev-bad-ts", "not a time"))
    _write(wh.landing, "clickstream", "000004", _event("ev-text-ts", "2026-11-26 09:30:00"))
    _sync(pg_database, wh.landing)
    assert pg_database.scalar("select data_type from information_schema.columns where table_schema = 'raw' "
                              "and table_name = 'clickstream' and column_name = 'event_timestamp'") == "text"  # fmt: skip
    assert pg_database.scalar("select count(*) from raw.clickstream") == landed["clickstream"] + 3
    result = _dbt_pg(wh, pg_database, "build", "--select", "stg_clickstream", "--indirect-selection", "cautious")
    assert result.returncode == 0, result.output[-5000:]
    statuses = {uid.split(".")[2]: status for uid, status in _statuses(result).items()}
    assert statuses["not_null_stg_clickstream_event_timestamp"] == "warn"  # the null is flagged, not fatal
    with pg_database.connect() as con:
        got = dict(con.execute("select event_id, event_timestamp from staging.stg_clickstream "
                               "where event_id in ('ev-bad-ts', 'ev-text-ts', 'ev-new-col')").fetchall())  # fmt: skip
    assert got == {
        "ev-bad-ts": None,
        "ev-text-ts": datetime(2026, 11, 26, 9, 30),
        "ev-new-col": datetime.fromisoformat(AS_OF),
    }

    # A file that leaves the landing folder (quarantined) leaves the raw schema with its rows.
    (wh.landing / "clickstream" / "000003.parquet").rename(tmp_path / "quarantined.parquet")
    removed = _sync(pg_database, wh.landing)
    assert removed.removed == [("clickstream", "000003")]
    assert pg_database.scalar("select count(*) from raw.clickstream where event_id = 'ev-bad-ts'") == 0
    # A file that is not Parquet is skipped with a warning (the landing check quarantines it), the rest loads.
    (wh.landing / "orders" / "000009.parquet").write_bytes(b"PAR1 this is not parquet")
    _write(wh.landing, "clickstream", "000009", _event("ev-next", datetime.fromisoformat(AS_OF)))
    partial = _sync(pg_database, wh.landing)
    assert partial.skipped == [str(wh.landing / "orders" / "000009.parquet")]
    assert partial.loaded == {"000009": {"clickstream": 1}}


def test_unreachable_warehouse_is_a_clear_error_without_the_password(tmp_path, monkeypatch):
    monkeypatch.setenv("VYAPAR_DBT_TARGET", "postgres")
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{settings.WAREHOUSE_CONN_ID.upper()}", f"postgresql://vyapar:{PASSWORD}@127.0.0.1:1/nowhere"
    )
    with pytest.raises(pg_raw.WarehouseUnreachableError) as raised:
        pg_raw.sync(tmp_path)
    message = str(raised.value)
    assert "127.0.0.1:1/nowhere" in message and settings.WAREHOUSE_CONN_ID in message
    assert PASSWORD not in message
    # The bootstrap CLI says the same in one line and exits non-zero.
    env = {**os.environ, "VYAPAR_DBT_TARGET": "postgres", "VYAPAR_LANDING_DIR": str(tmp_path),
           f"AIRFLOW_CONN_{settings.WAREHOUSE_CONN_ID.upper()}": f"postgresql://vyapar:{PASSWORD}@127.0.0.1:1/nowhere"}  # fmt: skip
    proc = subprocess.run([str(DBT_BIN.with_name("python")), "-m", "include.vyapar.data.warehouse", "bootstrap"],
                          env=env, capture_output=True, text=True, cwd=settings.REPO_ROOT, check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "cannot reach the Postgres warehouse" in proc.stderr and PASSWORD not in proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------- Cosmos + Airflow


@pytest.mark.slow
def test_cosmos_builds_the_postgres_profile_from_the_airflow_connection(tmp_path, pg_database, airflow_db):
    """`airflow dags test vyapar_sources` on the postgres target, the warehouse given only as
    AIRFLOW_CONN_VYAPAR_WAREHOUSE: the landing task loads the hour's batch into raw, Cosmos' freshness and
    source-test tasks connect through the profile it maps from that connection."""
    from include.vyapar.data.datagen import generate_initial
    from tests.airflow_runs import airflow_cli, dags_test  # the worker's metadata DB: the `airflow_db` fixture

    landing = tmp_path / "landing"
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    generate_initial(landing, scale=0.01, seed=7, as_of=now, progress=False)
    env = {**pg_database.env(), "VYAPAR_LANDING_DIR": str(landing), "VYAPAR_WAREHOUSE_POOL_SLOTS": "4"}
    setup = subprocess.run([str(DBT_BIN.with_name("python")), "-m", "include.vyapar.deploy.airflow_setup"],
                           env={**os.environ, **env}, capture_output=True, text=True, check=False)  # fmt: skip
    assert setup.returncode == 0, setup.stderr
    assert "pool postgres_warehouse: 4 slot(s)" in setup.stdout
    pools = json.loads(airflow_cli("pools", "get", "postgres_warehouse", "--output", "json").stdout)
    assert pools[0]["slots"] in (4, "4")

    # One source keeps the run short (every dbt task is a dbt process); the landing tasks run in full.
    result = dags_test("vyapar_sources", conf={"select": "source:vyaparbazaar_raw.orders"}, env=env)
    assert result.succeeded, result.output[-8000:]
    assert PASSWORD not in result.output
    # The profile came from the Airflow connection (Cosmos' profile mapping), not from dbt/profiles.yml ...
    assert "Using real values for profile vyaparbazaar" in result.output
    assert "Using user-supplied profiles.yml" not in result.output
    assert "(target='postgres')" in result.output
    # ... and reached the warehouse: freshness read raw._batches, which the landing task loaded (initial history
    # and the hour's new batch), and the source tests ran there.
    assert "PASS freshness of vyaparbazaar_raw.orders" in result.output
    assert "dbt freshness: vyaparbazaar_raw.orders=pass" in result.output
    assert pg_database.scalar("select count(distinct batch_id) from raw._batches") == 2
    assert pg_database.scalar("select count(*) from raw.orders") == table_row_counts(landing)["orders"]


def test_dbt_cli_env_comes_from_the_airflow_connection_in_either_form(monkeypatch):
    """The profiles.yml variables of our own dbt calls are derived from the one connection, URI or JSON."""
    var = f"AIRFLOW_CONN_{settings.WAREHOUSE_CONN_ID.upper()}"
    monkeypatch.setenv(var, "postgresql://dbt%40etl:p%2Fw%3Ad@db.internal:6543/analytics?sslmode=require")
    warehouse = settings.postgres_warehouse()
    assert warehouse.dbt_env() == {
        "VYAPAR_PG_HOST": "db.internal", "VYAPAR_PG_PORT": "6543", "VYAPAR_PG_USER": "dbt@etl",
        "VYAPAR_PG_PASSWORD": "p/w:d", "VYAPAR_PG_DATABASE": "analytics", "VYAPAR_PG_SSLMODE": "require",
    }  # fmt: skip
    assert "p/w:d" not in repr(warehouse) + str(warehouse)
    monkeypatch.setenv(var, json.dumps({"conn_type": "postgres", "host": "h", "login": "u", "password": "x",
                                        "schema": "d", "port": 5433, "extra": {"sslmode": "disable"}}))  # fmt: skip
    assert settings.postgres_warehouse().dbt_env()["VYAPAR_PG_PORT"] == "5433"
    monkeypatch.setenv(var, "postgresql://u:x@h:5432/")
    with pytest.raises(settings.WarehouseConnectionError, match="needs a host and a database name"):
        settings.postgres_warehouse()
