"""Warehouse snapshots: taken under the writer lock, the newest 7 kept, a restore that refuses while a writer runs
and keeps what it replaced; the restore DAG end to end."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from include.vyapar import settings
from include.vyapar.data import snapshots
from tests.airflow_runs import dags_test
from tests.conftest import REPO_ROOT


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "warehouse" / "vyaparbazaar.duckdb"
    path.parent.mkdir()
    env = {
        "VYAPAR_DUCKDB_PATH": str(path),
        "VYAPAR_WAREHOUSE_LOCK": str(path.with_suffix(".lock")),
        "VYAPAR_SNAPSHOT_DIR": str(tmp_path / "snapshots"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(settings, "DUCKDB_PATH", path)
    monkeypatch.setattr(settings, "WAREHOUSE_LOCK_PATH", path.with_suffix(".lock"))
    monkeypatch.setattr(settings, "SNAPSHOT_DIR", tmp_path / "snapshots")
    write_revenue(path, 100.0)
    return path


def write_revenue(path: Path, revenue: float) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create or replace table mart_daily_sales as select date '2026-12-06' as day, ? as revenue", [revenue])


def revenue(path: Path) -> float:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select revenue from mart_daily_sales").fetchone()[0]


def hold_the_writer_lock(lock: Path) -> subprocess.Popen:
    """Another process holding the flock, as a running dbt does."""
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import fcntl,sys,time; f=open({str(lock)!r},'a'); fcntl.flock(f, fcntl.LOCK_EX); "
         "print('locked', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_restore_puts_the_snapshot_back_and_can_itself_be_undone(warehouse):
    good = snapshots.take("before-daily-build")
    write_revenue(warehouse, -1.0)  # a bad build
    restored, undo = snapshots.restore()
    assert restored.name == good.name and revenue(warehouse) == 100.0
    assert undo is not None and undo.reason == snapshots.BEFORE_RESTORE
    snapshots.restore(undo.name)  # undo the restore: the bad build is back
    assert revenue(warehouse) == -1.0
    # the default restore skips the snapshots restores made: it is still the last good one
    assert snapshots.find(None).name == good.name


def test_only_the_newest_seven_are_kept(warehouse):
    taken = []
    for i in range(9):
        write_revenue(warehouse, float(i))
        taken.append(snapshots.take(f"run-{i}"))
    kept = snapshots.list_snapshots()
    assert [s.name for s in kept] == [s.name for s in reversed(taken[-7:])]
    assert len(list(settings.SNAPSHOT_DIR.glob("*.duckdb"))) == 7
    assert sum(s.bytes for s in kept) <= 7 * warehouse.stat().st_size


def test_a_restore_refuses_while_a_writer_holds_the_lock_and_changes_nothing(warehouse):
    snapshots.take()
    write_revenue(warehouse, 5.0)
    before = snapshots.list_snapshots()
    writer = hold_the_writer_lock(settings.WAREHOUSE_LOCK_PATH)
    try:
        with pytest.raises(snapshots.SnapshotError, match="refusing to restore: a writer holds the warehouse lock"):
            snapshots.restore()
    finally:
        writer.kill()
        writer.wait()
    assert revenue(warehouse) == 5.0 and snapshots.list_snapshots() == before


def waits_for_a_lock(pid: int) -> bool:
    """Whether the process is blocked in flock: /proc/locks lists a waiter as `-> FLOCK ... <pid> ...`."""
    return any(line.split()[1:3] == ["->", "FLOCK"] and str(pid) in line.split()
               for line in Path("/proc/locks").read_text().splitlines())  # fmt: skip


def test_a_snapshot_waits_for_the_running_writer(warehouse):
    writer = hold_the_writer_lock(settings.WAREHOUSE_LOCK_PATH)
    proc = subprocess.Popen([sys.executable, "-m", "include.vyapar.data.snapshots", "take"], cwd=REPO_ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and not waits_for_a_lock(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None and waits_for_a_lock(proc.pid), "the snapshot did not wait for the writer"
    finally:
        writer.kill()
        writer.wait()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.startswith("took ")
    assert len(snapshots.list_snapshots()) == 1


@pytest.mark.parametrize("name", ["../../etc/passwd", "20261207T013000Z-nope", "latest\n"])
def test_a_bad_or_unknown_name_is_a_clear_error_and_changes_nothing(warehouse, name):
    snapshots.take()
    proc = subprocess.run([sys.executable, "-m", "include.vyapar.data.snapshots", "restore", name], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert revenue(warehouse) == 100.0 and len(snapshots.list_snapshots()) == 1


def test_the_restore_dag_restores_the_named_snapshot(warehouse, airflow_db):  # noqa: F811
    keep = snapshots.take("keep-me")
    snapshots.take("later")
    write_revenue(warehouse, 7.0)
    env = {"VYAPAR_DUCKDB_PATH": str(warehouse), "VYAPAR_WAREHOUSE_LOCK": str(settings.WAREHOUSE_LOCK_PATH),
           "VYAPAR_SNAPSHOT_DIR": str(settings.SNAPSHOT_DIR)}  # fmt: skip
    result = dags_test("vyapar_warehouse_restore", conf={"snapshot": keep.name}, env=env)
    assert result.succeeded, result.output[-3000:]
    assert revenue(warehouse) == 100.0
    assert [s.reason for s in snapshots.list_snapshots()][0] == snapshots.BEFORE_RESTORE
