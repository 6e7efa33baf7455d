"""Runs bin/start's processes (`airflow standalone`, the mail catcher) and, on Ctrl-C, stops them and everything
they started: SIGTERM to all, SIGKILL to what is left after a grace period. `python -m include.vyapar.deploy.supervisor
[--also 'CMD ARGS'] [--grace SECONDS] -- MAIN COMMAND...`; exits with the main command's status (130 after Ctrl-C)."""

from __future__ import annotations

import argparse
import ctypes
import os
import shlex
import signal
import subprocess
import sys
import threading
import time

import psutil

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def become_subreaper() -> bool:
    """Orphaned descendants are re-parented to this process instead of init (Linux >= 3.4)."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _reap() -> None:
    """Collect every exited child (this process is the subreaper: orphans' zombies are ours)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def descendants() -> list[psutil.Process]:
    """Every live (non-zombie) process below this one."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def _signal_all(procs: list[psutil.Process], sig: signal.Signals) -> None:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def stop_all(grace: float, say=print) -> None:
    """SIGTERM to every descendant (each component shuts down its own way), SIGKILL to any left after `grace` s."""
    _signal_all(descendants(), signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap()
        left = descendants()
        if not left:
            return
        _signal_all(left, signal.SIGTERM)  # started during the shutdown (a task's last callback): stop it too
        time.sleep(0.1)
    left = descendants()
    say(f"supervisor: {len(left)} process(es) still running after {grace:.0f} s: SIGKILL "
        + ", ".join(f"{p.pid} {_name(p)}" for p in left[:10]))  # fmt: skip
    _signal_all(left, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while descendants() and time.monotonic() < deadline:
        _reap()
        time.sleep(0.05)
    _reap()


def _name(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline()[:3])[:80]
    except psutil.Error:
        return "?"


def run(main: list[str], also: list[list[str]], grace: float) -> int:
    """Why not `exec airflow standalone` (issue 20, reproduced): its components handle SIGINT and exit, but standalone
    stops only on a KeyboardInterrupt, which Python never raises when SIGINT was ignored at its start (a launcher's
    non-interactive background job): it stayed up with its four components `<defunct>`. Here every stop signal is
    handled, each command runs in its own session (out of the terminal's reach: one orderly stop), and this process
    is their subreaper: a process whose parent has gone (a task process in its own group) is still ours to stop."""
    become_subreaper()
    received: list[int] = []
    wake = threading.Event()

    def on_signal(signum, _frame) -> None:
        if not received:
            print("\n==> stopping VyaparBazaar (Airflow and everything it started) ...", flush=True)
        received.append(signum)
        wake.set()

    for sig in STOP_SIGNALS:
        signal.signal(sig, on_signal)
    # Each in its own session: the terminal's Ctrl-C reaches this process only, which stops everything in order.
    for command in also:
        subprocess.Popen(command, start_new_session=True)
    main_proc = subprocess.Popen(main, start_new_session=True)
    while not received and main_proc.poll() is None:
        wake.wait(0.5)
    started = time.monotonic()
    stop_all(grace)
    if received:
        print(f"==> stopped in {time.monotonic() - started:.1f} s", flush=True)
        return 128 + received[0]
    return main_proc.returncode or 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--also", action="append", default=[], help="another command to run beside (shell words)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    sys.exit(run(command, [shlex.split(c) for c in args.also], args.grace))


if __name__ == "__main__":
    main()
