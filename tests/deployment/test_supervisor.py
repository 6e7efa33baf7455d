"""bin/start's supervisor: Ctrl-C stops every process below it, even one that left its process group or
ignores SIGTERM. (The whole platform's Ctrl-C: tests/deployment/test_local_start.py.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

# A main command whose tree has what made `airflow standalone` hang: a process in its own session (as each
# Airflow task process is in its own group), one that ignores SIGTERM, and an orphan whose parent exited.
TREE = """
setsid sleep 301 &
bash -c "trap '' TERM; sleep 302" &
bash -c "sleep 303 & exit 0"
wait
"""


def _tree_of(pid: int, expected: int, timeout: float = 20) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while True:
        procs = psutil.Process(pid).children(recursive=True)
        if sum(p.cmdline()[:1] == ["sleep"] for p in procs) >= expected or time.monotonic() > deadline:
            return procs
        time.sleep(0.1)


def test_sigint_to_the_group_stops_every_descendant_within_the_grace_period():
    grace = 3
    proc = subprocess.Popen(
        [sys.executable, "-m", "include.vyapar.deploy.supervisor", "--grace", str(grace),
         "--also", "sleep 304", "--", "bash", "-c", TREE],
        start_new_session=True,
    )  # fmt: skip
    tree = _tree_of(proc.pid, expected=4)
    sleeps = sorted(" ".join(p.cmdline()) for p in tree if p.cmdline()[:1] == ["sleep"])
    assert sleeps == ["sleep 301", "sleep 302", "sleep 303", "sleep 304"], sleeps
    assert any(os.getsid(p.pid) != os.getsid(proc.pid) for p in tree)

    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends: to the terminal's foreground process group
    assert proc.wait(timeout=grace + 10) == 128 + signal.SIGINT
    took = time.monotonic() - started
    _, alive = psutil.wait_procs(tree, timeout=1)
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], alive
    assert took < grace + 6, f"stopped in {took:.1f} s"


def test_the_main_command_ending_stops_the_others():
    proc = subprocess.run(
        [sys.executable, "-m", "include.vyapar.deploy.supervisor", "--grace", "3", "--also", "sleep 305",
         "--", "bash", "-c", "exit 7"],
        timeout=30, check=False,
    )  # fmt: skip
    assert proc.returncode == 7
    assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "305"]]
