"""Command line: `python -m include.vyapar.alerting flush [--loop --interval 10]` drains the alert outbox."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time


def _needs_metadata_connections() -> bool:
    """True when an alert connection is not given as an AIRFLOW_CONN_* variable (compose's airflow-init stores
    them in the metadata DB). A process that is neither a task nor a server sees only the variables, so the
    flusher then declares itself server-side, like the scheduler it is kicked from, to read the metadata DB."""
    import yaml

    from include.vyapar.alerting.config import DEFAULT_CONFIG_PATH

    path = os.environ.get("VYAPAR_ALERTING_CONFIG") or DEFAULT_CONFIG_PATH
    try:
        raw = yaml.safe_load(open(path, encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return False  # the flush itself reports a bad config
    ids = [(raw.get("slack") or {}).get(k) for k in ("connection_id", "webhook_connection_id")]
    ids.append((raw.get("email") or {}).get("connection_id"))
    return any(conn_id and f"AIRFLOW_CONN_{conn_id.upper()}" not in os.environ for conn_id in ids)


if _needs_metadata_connections():
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")

from include.vyapar.alerting.delivery import flush  # noqa: E402 -- after the process context is set


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.vyapar.alerting")
    commands = parser.add_subparsers(dest="command", required=True)
    flush_cmd = commands.add_parser(
        "flush", help="send every due alert delivery, then exit (or keep going with --loop)"
    )
    flush_cmd.add_argument("--loop", action="store_true", help="keep flushing until stopped (SIGTERM/SIGINT)")
    flush_cmd.add_argument("--interval", type=float, default=10.0, help="seconds between flushes with --loop")
    flush_cmd.add_argument("--limit", type=int, default=200, help="most deliveries per flush")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    while True:
        # Drain: keep flushing while full batches come back, so a burst is not left waiting an interval.
        while (report := flush(limit=args.limit)).claimed >= args.limit and not stopping:
            pass
        logging.getLogger(__name__).info(
            "flush: %s sent, %s already sent, %s retried, %s dead, %s deferred",
            report.sent, report.already_sent, report.retried, report.dead, report.deferred,
        )  # fmt: skip
        if not args.loop or stopping:
            return 0
        deadline = time.monotonic() + args.interval
        while time.monotonic() < deadline and not stopping:
            time.sleep(min(0.5, args.interval))


if __name__ == "__main__":
    raise SystemExit(main())
