"""Command line: `python -m include.vyapar.alerting flush` drains the alert outbox once, now (an operator's tool:
the scheduler's sweeper delivers on its own, docs/alerting.md)."""

from __future__ import annotations

import argparse
import logging

from include.vyapar import settings


def _needs_metadata_connections() -> bool:
    """True when an alert connection is not given as an AIRFLOW_CONN_* variable (compose's airflow-init stores
    them in the metadata DB). A process that is neither a task nor a server sees only the variables, so the
    flusher then declares itself server-side, like the scheduler it is kicked from, to read the metadata DB."""
    import yaml

    path = settings.alerting_config_path()
    try:
        raw = yaml.safe_load(open(path, encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return False  # the flush itself reports a bad config
    ids = [(raw.get("slack") or {}).get(k) for k in ("connection_id", "webhook_connection_id")]
    ids.append((raw.get("email") or {}).get("connection_id"))
    given = settings.connection_variables()
    return any(conn_id and f"AIRFLOW_CONN_{conn_id.upper()}" not in given for conn_id in ids)


if _needs_metadata_connections():
    settings.declare_server_process()

from include.vyapar.alerting.delivery import flush  # noqa: E402 -- after the process context is set


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.vyapar.alerting")
    commands = parser.add_subparsers(dest="command", required=True)
    flush_cmd = commands.add_parser("flush", help="send every alert delivery that is due, then exit")
    flush_cmd.add_argument("--limit", type=int, default=200, help="most deliveries per flush")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Drain: keep flushing while full batches come back.
    while (report := flush(limit=args.limit)).claimed >= args.limit:
        pass
    logging.getLogger(__name__).info(
        "flush: %s sent, %s already sent, %s retried, %s dead, %s deferred",
        report.sent, report.already_sent, report.retried, report.dead, report.deferred,
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
