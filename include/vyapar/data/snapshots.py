"""Warehouse snapshots: a consistent copy of the DuckDB file, taken under the writer lock before the daily build,
and a restore that refuses while a writer runs and keeps the state it replaces as a snapshot of its own.

`python -m include.vyapar.data.snapshots list|take|restore [NAME]`: docs/operations.md says when to use which.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from include.vyapar import settings
from include.vyapar.runtime.dbt_in_process import WarehouseBusyError, warehouse_lock

NAME_PATTERN = r"^[0-9]{8}T[0-9]{6}Z-[a-z0-9-]{1,40}$"
_NAME_RE = re.compile(NAME_PATTERN)
_REASON_RE = re.compile(r"^[a-z0-9-]{1,40}$")
BEFORE_RESTORE = "before-restore"  # the state a restore replaced: restore it to undo the restore
WAL_SUFFIX = ".wal"


class SnapshotError(RuntimeError):
    """A snapshot or restore could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class Snapshot:
    name: str
    reason: str
    created_at: str  # ISO 8601, UTC
    bytes: int
    path: Path

    def describe(self) -> str:
        return f"{self.name}  {self.bytes / 2**20:9.1f} MiB  {self.reason}"


def _wal(path: Path) -> Path:
    return path.with_name(path.name + WAL_SUFFIX)


def _copy_database(source: Path, target: Path, partial: Path) -> None:
    """Copy a DuckDB file and its WAL (if any) over `target`; the file is written as `partial`, renamed when whole."""
    shutil.copyfile(source, partial)
    _wal(target).unlink(missing_ok=True)
    if _wal(source).is_file():
        shutil.copyfile(_wal(source), _wal(target))
    os.replace(partial, target)


def list_snapshots() -> list[Snapshot]:
    """Every complete snapshot, newest first (a copy cut short has no metadata file and is not listed)."""
    found = []
    for meta in settings.SNAPSHOT_DIR.glob("*.json"):  # none when the folder does not exist yet
        try:
            raw = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        path = meta.with_suffix(".duckdb")
        if _NAME_RE.match(raw.get("name", "")) and path.is_file():
            found.append(Snapshot(raw["name"], raw["reason"], raw["created_at"], raw["bytes"], path))
    return sorted(found, key=lambda s: s.name, reverse=True)


def _copy_warehouse(reason: str, keep: int) -> Snapshot:
    """Copy the warehouse file (and its WAL, if any) into the snapshot folder; the caller holds the writer lock."""
    source = settings.DUCKDB_PATH
    if not source.is_file():
        raise SnapshotError(f"no warehouse at {source}: nothing to snapshot (build it first)")
    now = datetime.now(UTC)
    name = f"{now:%Y%m%dT%H%M%SZ}-{reason}"
    target = settings.SNAPSHOT_DIR / f"{name}.duckdb"
    if target.exists():  # two in the same second: the later one wins the name with a suffix
        name = f"{name}-2"
        target = settings.SNAPSHOT_DIR / f"{name}.duckdb"
    settings.SNAPSHOT_DIR.mkdir(parents=True, exist_ok=True)
    _copy_database(source, target, target.with_suffix(".partial"))
    size = target.stat().st_size + (_wal(target).stat().st_size if _wal(target).is_file() else 0)
    snapshot = Snapshot(name, reason, now.isoformat(timespec="seconds"), size, target)
    meta = {k: v for k, v in asdict(snapshot).items() if k != "path"}
    target.with_suffix(".json").write_text(json.dumps(meta, indent=2))  # written last: marks the copy complete
    _prune(keep)
    return snapshot


def _prune(keep: int) -> None:
    """Keep the newest `keep` snapshots; the disk they take is bounded by keep x the warehouse's size."""
    for old in list_snapshots()[keep:]:
        for path in (old.path.with_suffix(".json"), old.path, _wal(old.path)):
            path.unlink(missing_ok=True)
    for stray in settings.SNAPSHOT_DIR.glob("*.partial"):  # a copy a killed process left behind
        stray.unlink(missing_ok=True)


def take(reason: str = "manual", *, keep: int | None = None) -> Snapshot:
    """A consistent snapshot: waits for the writer lock, so no dbt run is writing while the file is copied."""
    if settings.IS_POSTGRES:
        raise SnapshotError("the warehouse is PostgreSQL: snapshot it with pg_dump (docs/operations.md)")
    if not _REASON_RE.match(reason):
        raise SnapshotError(f"reason {reason!r}: lowercase letters, digits and - only, at most 40")
    with warehouse_lock():
        return _copy_warehouse(reason, keep or settings.SNAPSHOT_KEEP)


def find(name: str | None) -> Snapshot:
    """The named snapshot, or (None) the newest one that a restore did not make."""
    snapshots = list_snapshots()
    if not name:
        for snapshot in snapshots:
            if snapshot.reason != BEFORE_RESTORE:
                return snapshot
        raise SnapshotError(f"no snapshot to restore in {settings.SNAPSHOT_DIR}")
    if not _NAME_RE.match(name):
        raise SnapshotError(f"snapshot name {name!r} is not of the form 20261207T013000Z-reason")
    for snapshot in snapshots:
        if snapshot.name == name:
            return snapshot
    known = ", ".join(s.name for s in snapshots[:10]) or "none"
    raise SnapshotError(f"no snapshot named {name!r}; the newest are: {known}")


def restore(name: str | None = None) -> tuple[Snapshot, Snapshot | None]:
    """Put a snapshot back as the warehouse. Refuses at once while a writer holds the lock; the replaced state is
    kept as a snapshot (reason before-restore), so `restore <that name>` undoes this. Returns (restored, undo)."""
    if settings.IS_POSTGRES:
        raise SnapshotError("the warehouse is PostgreSQL: restore it with pg_restore (docs/operations.md)")
    chosen = find(name)
    try:
        with warehouse_lock(wait=False):
            # One more than the limit while this runs: the chosen snapshot must outlive the undo copy's pruning.
            undo = _copy_warehouse(BEFORE_RESTORE, settings.SNAPSHOT_KEEP + 1) if settings.DUCKDB_PATH.is_file() else None
            target = settings.DUCKDB_PATH
            _copy_database(chosen.path, target, target.with_name(target.name + ".restoring"))
            _prune(settings.SNAPSHOT_KEEP)
    except WarehouseBusyError as exc:
        raise SnapshotError(f"refusing to restore: {exc}") from None
    return chosen, undo


def snapshot_before_daily_build() -> str:
    """The dimensions DAG's first task (01:00 IST): yesterday's finished warehouse, before tonight's build."""
    if settings.IS_POSTGRES:
        return "PostgreSQL warehouse: no file snapshot (docs/operations.md: pg_dump before the daily build)"
    if not settings.DUCKDB_PATH.is_file():
        return f"no warehouse at {settings.DUCKDB_PATH} yet: nothing to snapshot"
    snapshot = take("before-daily-build")
    return f"snapshot {snapshot.name} ({snapshot.bytes / 2**20:.1f} MiB) in {snapshot.path.parent}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.vyapar.data.snapshots", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the snapshots, newest first")
    take_cmd = sub.add_parser("take", help="snapshot the warehouse now (waits for a running writer)")
    take_cmd.add_argument("--reason", default="manual")
    restore_cmd = sub.add_parser("restore", help="put a snapshot back (refuses while a writer runs)")
    restore_cmd.add_argument("name", nargs="?", help="default: the newest snapshot not made by a restore")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for snapshot in list_snapshots():
                print(snapshot.describe())
        elif args.command == "take":
            print(f"took {take(args.reason).describe()}")
        else:
            restored, undo = restore(args.name)
            print(f"restored {restored.name}")
            if undo:
                print(f"the replaced warehouse is snapshot {undo.name}: `restore {undo.name}` undoes this")
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
