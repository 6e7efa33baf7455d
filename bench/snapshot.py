"""Warehouse snapshots at a scale: take one (the dimensions DAG's nightly copy) and restore it, each as the CLI a
user runs (`python -m include.vyapar.data.snapshots`), on a copy of the scale's baseline warehouse."""

from __future__ import annotations

import shutil
import sys

from bench.common import Scale, log, run_timed


def measure(scale: Scale) -> dict:
    warehouse = scale.restore()
    snapshots = scale.root / "snapshots"
    shutil.rmtree(snapshots, ignore_errors=True)
    env = scale.env(VYAPAR_SNAPSHOT_DIR=str(snapshots))
    cli = [sys.executable, "-m", "include.vyapar.data.snapshots"]
    take = run_timed([*cli, "take"], env)
    if take.returncode:
        raise RuntimeError(f"snapshot take failed: {take.output[-2000:]}")
    restore = run_timed([*cli, "restore"], env)
    if restore.returncode:
        raise RuntimeError(f"snapshot restore failed: {restore.output[-2000:]}")
    sizes = sorted(p.stat().st_size for p in snapshots.glob("*.duckdb"))
    out = {
        "warehouse_bytes": warehouse.stat().st_size,
        "take_seconds": round(take.seconds, 2),
        "restore_seconds": round(restore.seconds, 2),  # copies twice: the undo snapshot, then the restore
        "snapshot_bytes": sizes[-1] if sizes else None,
        "snapshots_after_restore": len(sizes),
    }
    log(f"{scale.name} snapshot: {out}")
    shutil.rmtree(snapshots, ignore_errors=True)
    return out
