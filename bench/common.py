"""Shared helpers: per-scale environments, timed commands with peak RSS of the whole process tree."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(os.environ.get("VYAPAR_BENCH_RESULTS") or REPO_ROOT / "bench" / "results")
WORK_DIR = Path(os.environ.get("VYAPAR_BENCH_WORK") or RESULTS_DIR / "work")
PYTHON = sys.executable
BIN = Path(PYTHON).parent
# The history every scale is generated with: fixed, so each run measures the same rows.
AS_OF = "2026-11-26T12:00:00"
SEED = 42
# Rows of clickstream per datagen scale unit (datagen: scale 1 = 100k events).
EVENTS_PER_SCALE = 100_000


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@dataclass
class Scale:
    scale: float

    @property
    def name(self) -> str:
        return f"s{self.scale:g}"

    @property
    def events(self) -> int:
        return int(self.scale * EVENTS_PER_SCALE)

    @property
    def root(self) -> Path:
        return WORK_DIR / self.name

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "vyaparbazaar.duckdb"

    @property
    def baseline(self) -> Path:
        """The built warehouse every measurement of this scale starts from (a copy of it)."""
        return self.root / "baseline.duckdb"

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "VYAPAR_DATA_DIR": str(self.root),
            "VYAPAR_LANDING_DIR": str(self.landing),
            "VYAPAR_DUCKDB_PATH": str(self.warehouse),
            "VYAPAR_WAREHOUSE_LOCK": str(self.warehouse.with_suffix(".lock")),
            "AIRFLOW__COSMOS__CACHE_DIR": str(self.root / "cosmos_cache"),
            "PYTHONPATH": str(REPO_ROOT),
            "DO_NOT_TRACK": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        }
        env.update(extra)
        return env

    def restore(self, to: Path | None = None) -> Path:
        to = to or self.warehouse
        to.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", ".wal"):
            Path(f"{to}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.baseline, to)
        # Every measurement starts with the copy on disk: a 1.4 GiB copy's dirty pages, written back during the
        # run that follows, cost that run seconds (a run right after the copy paid more than one after a parse).
        os.sync()
        return to


@dataclass
class Timed:
    seconds: float
    peak_rss: int  # bytes, sum over the process tree, sampled
    returncode: int
    output: str
    cli_seconds: float | None = None  # bench.dbt_warm runs: the whole process, dbt's import included
    node_seconds: dict | None = None  # dbt run_results per node, where a caller reads them
    cpu_seconds: float | None = None  # user + system CPU of the command and its children


def _tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 7200) -> Timed:
    """Run a command; wall seconds and the peak resident memory of it and all its children (sampled every 50 ms)."""
    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    done = threading.Event()
    ps = psutil.Process(proc.pid)

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, _tree_rss(ps))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate(timeout=timeout)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Timed(seconds, peak, proc.returncode, out, cpu_seconds=cpu)


def dbt_cmd(*args: str) -> list[str]:
    """Plain dbt: the same binary, project, profile and arguments the platform uses (no lock wrapper)."""
    from include.vyapar.data.warehouse import dbt_command

    return dbt_command(*args, serialized=False)


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
