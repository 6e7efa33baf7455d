"""An alert store that disappears under a running process: an error, never an alert written where nobody reads."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from include.vyapar.alerting import raise_alert
from include.vyapar.alerting.store import AlertStore, AlertStoreGone, get_store
from tests.alerting.conftest import failed_run


def _delete_store(store: AlertStore) -> None:
    """What `rm -rf data/` does to a running platform: the file and its WAL go, open connections stay."""
    database = Path(store.url.removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):
        path.unlink()
    assert not database.exists()


def _capture_from_now(harness, caplog) -> None:
    """Setting up the senders imports Airflow's providers, whose logging set-up replaces the root logger's handlers
    (pytest's capture among them) the first time in a process: do it first, then capture again."""
    from include.vyapar.alerting.delivery import build_senders

    build_senders(harness.store.config)
    if caplog.handler not in logging.getLogger().handlers:
        logging.getLogger().addHandler(caplog.handler)


def test_a_deleted_sqlite_store_raises_instead_of_taking_the_alert(harness):
    store = get_store()
    store.enqueue(failed_run(dedup_key="failed_run:before", subject="before the deletion"))  # the store is in use
    _delete_store(store)

    with pytest.raises(AlertStoreGone, match="deleted or replaced"):
        store.enqueue(failed_run())

    # Then it uses the store at the path again, the one every other process opens.
    result = store.enqueue(failed_run(dedup_key="failed_run:after", subject="after the deletion"))
    assert result.status == "open"
    other_process = AlertStore(store.url, config=store.config)
    assert [a["subject"] for a in other_process.list_alerts()] == ["after the deletion"]
    other_process.engine.dispose()


def test_raise_alert_without_its_store_logs_the_alert_and_delivers_it_directly(harness, caplog):
    _capture_from_now(harness, caplog)
    store = get_store()
    store.enqueue(failed_run(dedup_key="failed_run:before", subject="before the deletion"))
    _delete_store(store)

    with caplog.at_level(logging.INFO):
        result = raise_alert(failed_run())  # what on_task_failure calls; VYAPAR_ALERTING_KICK=0 here

    assert result.status == "direct" and "deleted or replaced" in result.reason
    logged = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    assert "ALERT NOT STORED" in logged and "fct_daily_gmv failed" in logged and "gmv_inr" in logged
    [message] = harness.slack.messages  # high: Slack and email, at once, without the outbox
    assert "fct_daily_gmv failed" in message.text and harness.slack.channels["data-oncall"] == message.channel
    [email] = harness.smtp.messages
    assert "fct_daily_gmv failed" in email["Subject"]
    assert "sent directly" in harness.smtp.parts(email)[0]

    # The next alert is stored again, where the other processes look.
    assert raise_alert(failed_run(dedup_key="failed_run:next", subject="next")).status == "open"


def test_an_alert_sent_without_its_store_or_its_config_is_logged_and_sent_redacted(harness, caplog, monkeypatch):
    """The store is gone and the config cannot complete the alert either (its error echoes a secret value): the log
    (tracebacks included), the Slack message and the email carry no secret of the alert or of either error."""
    from include.vyapar.alerting import incidents
    from include.vyapar.alerting.config import AlertingConfigError

    password, run_secret, token = "pw-" + "Zq7" * 5, "s3cr3t-" + "r" * 10, "gh" + "p_" + "T0k3n" * 7 + "x"

    def config_that_fails():
        raise AlertingConfigError(f"alerting.yaml: links.runbook_base_url: not postgresql://etl:{password}@warehouse")

    _capture_from_now(harness, caplog)
    store = get_store()
    store.enqueue(failed_run(dedup_key="failed_run:before", subject="before the deletion"))
    _delete_store(store)
    monkeypatch.setattr(incidents, "get_config", config_that_fails)
    alert = failed_run(
        severity="high", subject=f"vyapar_marts: push failed with {token}", run_id=f"manual__PGPASSWORD={run_secret}",
        error=f"could not connect to postgresql://etl:{password}@warehouse:5432/vyapar",
    )  # fmt: skip

    with caplog.at_level(logging.DEBUG):
        result = raise_alert(alert)

    assert result.status == "direct"
    assert "ALERT NOT STORED" in caplog.text and "could not complete the alert" in caplog.text
    [message], [email] = harness.slack.messages, harness.smtp.messages  # still delivered, directly
    sent = json.dumps([message.text, message.blocks]) + email["Subject"] + "".join(harness.smtp.parts(email))
    assert "push failed with" in sent and "manual__PGPASSWORD=" in sent
    for secret in (password, run_secret, token):
        assert secret not in caplog.text and secret not in sent
