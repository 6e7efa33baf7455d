"""A secret of any common shape, anywhere in an alert, never reaches Slack, email, the alert store or the log.

Property-tested with hypothesis through the real path: enqueue into the SQLite store, record the run's results and
task alerts under a hostile run id, flush to the fake Slack and the local SMTP server, then read every table of the
store. Secrets are assembled at run time: the repo holds no token-shaped literal.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import string
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from include.vyapar.alerting import config as alerting_config
from include.vyapar.alerting import enqueue
from include.vyapar.alerting.alert import task_log_url
from include.vyapar.alerting.formatting import email_content, slack_message
from include.vyapar.alerting.redaction import MASK, redact
from tests.alerting.conftest import failed_run

PEM_LABEL = "RSA " + "PRIVATE KEY"  # assembled: no key-shaped literal in the repo
UPPER_DIGITS = string.ascii_uppercase + string.digits
ALNUM = string.ascii_letters + string.digits
# A value in NAME=value text ends at whitespace or , ; & " ' } (nothing says where it ends otherwise); & < > are
# escaped on the way to Slack and HTML, and \ by JSON, so a leak of them could hide from the check below.
VALUE_CHARS = ALNUM + "!#$%()*+-./:=?@[]^_{|~"
URL_PASSWORD_CHARS = ALNUM + "!$%()*+-.=?@[]^_~"


def _value(chars: str = VALUE_CHARS, min_size: int = 10, max_size: int = 32):
    return st.text(alphabet=chars, min_size=min_size, max_size=max_size)


@st.composite
def secret_shapes(draw) -> tuple[str, str, str]:
    """(shape name, the text as it would appear, the secret part that must not leak)."""
    shape = draw(
        st.sampled_from(
            ["aws_access_key", "aws_secret", "pg_password", "jwt_secret", "fernet_key", "github", "url_password"]
        )
    )
    if shape == "aws_access_key":
        key = draw(st.sampled_from(["AKIA", "ASIA"])) + draw(_value(UPPER_DIGITS, 16, 16))
        return shape, key, key
    if shape == "aws_secret":
        name = draw(st.sampled_from(["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"]))
        value = draw(_value(ALNUM + "/+", 40, 40))
        return shape, f"{name}{draw(st.sampled_from(['=', ': ', ' = ']))}{value}", value
    if shape == "pg_password":
        name = draw(st.sampled_from(["VYAPAR_PG_PASSWORD", "PGPASSWORD", "POSTGRES_PASSWORD", "db_password"]))
        value = draw(_value())
        return shape, f"{name}={value}", value
    if shape == "jwt_secret":
        name = draw(st.sampled_from(["AIRFLOW__API_AUTH__JWT_SECRET", "VYAPAR_JWT_SECRET", "jwt_secret"]))
        value = draw(_value())
        return shape, f"{name}={value}", value
    if shape == "fernet_key":
        name = draw(st.sampled_from(["AIRFLOW__CORE__FERNET_KEY", "VYAPAR_FERNET_KEY", "fernet_key"]))
        value = draw(_value(ALNUM + "-_", 43, 43)) + "="
        return shape, f"{name}{draw(st.sampled_from(['=', ': ']))}{value}", value
    if shape == "github":
        token = draw(st.sampled_from(["ghp", "gho", "ghu", "ghs", "ghr"])) + "_" + draw(_value(ALNUM, 36, 36))
        return shape, token, token
    password = draw(_value(URL_PASSWORD_CHARS, 6, 24).filter(lambda p: "@" in p))
    url = f"postgresql://{draw(st.sampled_from(['etl', 'u', 'airflow']))}:{password}@warehouse:5432/vyapar"
    return shape, url, password


FIELDS = ["subject", "summary", "error", "fact value", "fact label", "owner", "run_id", "link", "affected", "task_id"]
# Any text around the secret: printable, multi-line, hostile markup, non-ASCII.
AROUND = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Co", "Cn")), max_size=30
) | st.sampled_from(["", " ", "\n", "error: ", "<!channel> ", "connect(", "`", '"', "'", "x", "₹ नमस्ते "])


def _alert_with(field: str, text: str, dedup_key: str):
    fields: dict = {"dedup_key": dedup_key}
    if field == "fact value":
        fields["facts"] = {"Connection": text}
    elif field == "fact label":
        fields["facts"] = {text: "value"}
    elif field == "link":
        fields["links"] = {"Runbook": "https://runbooks.example/alerting.md#" + text}
    elif field == "affected":
        fields["affected"] = [text]
    elif field == "run_id":
        # as the callbacks build it: the run id is a fact and part of the task log link
        fields["run_id"] = text
        fields["links"] = {"Task log": task_log_url("http://airflow.test:8080", "vyapar_marts", text, "marts.x")}
    else:
        fields[field] = text
    return failed_run(**fields)


_keys = itertools.count()


def _every_text_in(store) -> str:
    """Every text value of every table in the store's database, whatever the code thinks the tables are."""
    texts = []
    with store.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.exec_driver_sql(f'SELECT * FROM "{table}"'):
                texts += [f"{table}: {value}" for value in row if isinstance(value, str)]
    return "\n".join(texts)


def _record_the_run(store, run_id: str, result, dedup_key: str) -> None:
    """What the callbacks and the reconciler keep about a run, keyed by its run id: each write is then found again.
    Node and task are new each time (hypothesis draws the same run id again)."""
    node, dag, task = f"model.vyaparbazaar.{dedup_key}", "vyapar_marts", f"marts.{dedup_key}"
    store.record_node_result(node, "model", "success", 1.5, dag_id=dag, run_id=run_id, task_id=task, try_number=1)
    store.record_duration(node, 1.5, run_id)
    assert store.mark_slow_alerted(run_id, node) and not store.mark_slow_alerted(run_id, node)
    assert store.was_slow_alerted(run_id, node)
    store.record_task_alert(dag, run_id, task, result, dedup_key)
    assert store.has_task_alert(dag, run_id, task)
    assert dedup_key in store.task_alert_keys(dag, run_id)


@functools.cache
def _fixed_text() -> str:
    """What every message carries whatever the secret: a drawn "secret" found in it proves nothing."""
    alert = failed_run()
    slack, email = slack_message(alert), email_content(alert)
    rendered = json.dumps([slack.text, slack.blocks], ensure_ascii=False) + email.text + email.html + alert.to_json()
    return rendered + alerting_config.DEFAULT_CONFIG_PATH.read_text()


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(shape=secret_shapes(), before=AROUND, after=AROUND)
def test_a_secret_of_each_shape_anywhere_in_a_text_is_masked(shape, before, after):
    name, shaped, secret = shape
    assume(secret not in before + after)
    assert secret not in redact(before + shaped + after, []), name


# Through the real path: fewer examples (each one is a store write and two deliveries), the same shapes.
@settings(
    max_examples=40, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(shape=secret_shapes(), before=AROUND, after=AROUND, field=st.sampled_from(FIELDS))
def test_a_secret_of_each_shape_anywhere_never_reaches_slack_email_the_store_or_the_log(
    harness, caplog, shape, before, after, field
):
    name, shaped, secret = shape
    assume(secret not in before + after and secret not in _fixed_text())  # it must be the secret that leaks
    caplog.set_level(logging.DEBUG)
    slack_seen, mail_seen, logs_seen = len(harness.slack.messages), len(harness.smtp.messages), len(caplog.records)
    text, dedup_key = before + shaped + after, f"redaction-{next(_keys)}"

    result = enqueue(_alert_with(field, text, dedup_key))
    _record_the_run(harness.store, text, result, dedup_key)  # the run id is the user's text in every table
    harness.drain()

    slack = [json.dumps([m.text, m.blocks, m.metadata], ensure_ascii=False) for m in harness.slack.messages[slack_seen:]]
    mail = [part for m in harness.smtp.messages[mail_seen:] for part in (m["Subject"], *harness.smtp.parts(m))]
    stored = _every_text_in(harness.store)
    assert slack and mail, f"alert {result} was not delivered to both channels"
    logs = "\n".join(record.getMessage() for record in caplog.records[logs_seen:])
    for where, text in [("slack", "\n".join(slack)), ("email", "\n".join(mail)), ("store", stored), ("logs", logs)]:
        for form in {secret, quote(secret, safe="")}:
            assert form not in text, f"{name} secret in the {field} leaked into {where}"


@pytest.mark.parametrize(
    ("text", "kept", "hidden"),
    [
        ("PGPASSWORD=s3cr3t-pw! retry", "PGPASSWORD=", "s3cr3t-pw!"),
        ("VYAPAR_PG_PASSWORD=s3cr3t-pw!", "VYAPAR_PG_PASSWORD=", "s3cr3t-pw!"),
        ("AIRFLOW__API_AUTH__JWT_SECRET=0123abcd0123abcd", "JWT_SECRET=", "0123abcd0123abcd"),
        ("AIRFLOW__CORE__FERNET_KEY=" + "Q" * 43 + "=", "FERNET_KEY=", "Q" * 43),
        ("postgresql://u:p@ssw0rdAT@h:5432/db", "postgresql://u:" + MASK + "@h:5432/db", "ssw0rdAT"),
        ("AKIA" + "Z" * 16 + " in use", " in use", "Z" * 16),
        (f"-----BEGIN {PEM_LABEL}-----\nMIIEabcdef\n-----END {PEM_LABEL}-----\nnext", "next", "MIIEabcdef"),
        ("Runtime Error in model fct_orders: column gmv_inr not found", "column gmv_inr not found", MASK),
    ],
)
def test_each_shape_is_masked_and_the_text_around_it_kept(text, kept, hidden):
    masked = redact(text, [])
    assert kept in masked and hidden not in masked, masked


def test_a_failing_detector_withholds_the_text_rather_than_send_it(monkeypatch, caplog):
    from include.vyapar.alerting import redaction

    def moved_in_an_upgrade():
        raise AttributeError("module 'detect_secrets.plugins.keyword' has no attribute 'DENYLIST'")

    monkeypatch.setattr(redaction, "_detectors", moved_in_an_upgrade)
    token = "gh" + "p_" + "A1b2" * 9
    assert redact(f"push failed with {token}", []) == redaction.WITHHELD
    assert "secret detection failed (AttributeError)" in caplog.text and token not in caplog.text


def test_runs_that_differ_only_in_a_masked_secret_stay_apart_in_the_store(harness):
    """A run id with a secret is kept redacted, yet two such runs are two runs: one's task alert is not the other's."""
    secret_a, secret_b = "s3cr3t-" + "a" * 12, "s3cr3t-" + "b" * 12
    first, second = f"manual__PGPASSWORD={secret_a}", f"manual__PGPASSWORD={secret_b}"
    result = enqueue(failed_run(dedup_key="redaction-apart", run_id=first))
    harness.store.record_task_alert("vyapar_marts", first, "marts.x", result, "redaction-apart")

    assert harness.store.has_task_alert("vyapar_marts", first, "marts.x")
    assert not harness.store.has_task_alert("vyapar_marts", second, "marts.x")
    assert harness.store.mark_slow_alerted(first, "model.x") and harness.store.mark_slow_alerted(second, "model.x")
    stored = _every_text_in(harness.store)
    assert "manual__PGPASSWORD=" + MASK in stored
    assert secret_a not in stored and secret_b not in stored
    ordinary = "scheduled__2025-06-01T00:00:00+00:00"  # nothing to mask: kept as it is, readable
    harness.store.record_duration("model.x", 2.0, ordinary)
    assert f"node_durations: {ordinary}" in _every_text_in(harness.store)
