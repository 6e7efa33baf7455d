"""Stale-source alert latency, end to end through the scheduler (issue 21, item 5).

`bin/start` on its own data folder, every DAG paused but the freshness watcher, Slack a local stand-in (its Web API,
as the product's .env points at it). The raw landing is generated so that its newest batch turns 2 hours old (the
stale-data rule's limit) a few minutes after the platform is up. The watcher fires on its cron (every 10 minutes);
the figure is the time from the moment the rule is broken until the alert is in Slack, split into the wait for the
watcher's next cron tick, the scheduler's start of that run, the run until the alert was raised, and the delivery.

    .venv/bin/python -m bench.freshness_latency            # results: bench/results/freshness_latency.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import REPO_ROOT, RESULTS_DIR, log
from bench.platform import bin_start, utc

WATCH_DAG = "vyapar_freshness_watch"
LIMIT = timedelta(hours=2)
BREACH_AFTER = timedelta(minutes=6)  # the platform is up after 1-2 minutes


def main() -> int:
    sys.path.insert(0, str(REPO_ROOT))
    from tests.fakes.slack_server import FakeSlack

    root = Path(tempfile.mkdtemp(prefix="vyapar-freshness-latency-"))
    data = root / "data"
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    breach_at = now + BREACH_AFTER
    python = str(Path(sys.executable))
    subprocess.run([python, "-m", "include.vyapar.data.datagen", "init", "--scale", "0.05", "--quiet",
                    "--as-of", (now - timedelta(hours=3)).isoformat()],
                   env={**os.environ, "VYAPAR_DATA_DIR": str(data)}, check=True)  # fmt: skip
    subprocess.run([python, "-m", "include.vyapar.data.datagen", "arrive", "--quiet",
                    "--at", (breach_at - LIMIT).isoformat()],
                   env={**os.environ, "VYAPAR_DATA_DIR": str(data)}, check=True)  # fmt: skip
    log(f"newest batch landed at {(breach_at - LIMIT):%H:%M:%S} UTC: the 2-hour rule breaks at {breach_at:%H:%M:%S}")

    slack = FakeSlack().start()
    try:
        with bin_start(root, f"SLACK_BOT_TOKEN={slack.token}\nSLACK_API_URL='{slack.api_url}'\n") as platform:
            platform.unpause(WATCH_DAG)
            log(f"platform up at {platform.base}; {WATCH_DAG} unpaused at {datetime.now(UTC):%H:%M:%S}")
            assert datetime.now(UTC).replace(tzinfo=None) < breach_at, "the platform came up after the breach"
            figures = _measure(platform, slack, breach_at)
    finally:
        slack.stop()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "freshness_latency.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return 0


def _measure(platform, slack, breach_at: datetime) -> dict:
    def stale_alert():
        return [m for m in slack.messages if "has not landed" in m.text or "stopped" in m.text]

    deadline = time.monotonic() + 25 * 60
    while not stale_alert():
        assert time.monotonic() < deadline, "no stale-source alert within 25 minutes"
        time.sleep(1)
    message = stale_alert()[0]
    delivered_at = datetime.fromtimestamp(float(message.ts), UTC).replace(tzinfo=None)
    catching = next(r for r in platform.runs(WATCH_DAG) if r["start_date"] and utc(r["start_date"]) <= delivered_at
                    and utc(r["run_after"]) >= breach_at)  # fmt: skip
    tis = platform.task_instances(WATCH_DAG, catching["dag_run_id"])
    task_start = min(utc(t["start_date"]) for t in tis if t["start_date"])
    from include.vyapar.alerting.store import AlertStore

    store = AlertStore(f"sqlite:///{platform.data / 'alerts.sqlite'}")
    raised = min((r["created_at"] for r in store.alerts_since(0) if r["kind"] == "stale_data"), default=None)
    store.engine.dispose()
    raised_at = datetime.fromtimestamp(float(raised), UTC).replace(tzinfo=None) if raised else None
    tick = utc(catching["run_after"])
    return {
        "breach_at_utc": breach_at.isoformat(),
        "catching_run": catching["dag_run_id"],
        "cron_tick_utc": tick.isoformat(),
        "wait_for_the_cron_tick_seconds": round((tick - breach_at).total_seconds(), 1),
        "tick_to_task_start_seconds": round((task_start - tick).total_seconds(), 1),
        "task_start_to_alert_raised_seconds": round((raised_at - task_start).total_seconds(), 1) if raised_at else None,
        "raised_to_slack_seconds": round((delivered_at - raised_at).total_seconds(), 1) if raised_at else None,
        "breach_to_slack_seconds": round((delivered_at - breach_at).total_seconds(), 1),
        "alert": message.text[:200],
    }


if __name__ == "__main__":
    sys.exit(main())
