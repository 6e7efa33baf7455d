"""Hostile and huge alert text reaches Slack escaped and within limits; secrets never leave the process."""

from __future__ import annotations

import json
import logging
import re

from include.vyapar.alerting import Alert
from include.vyapar.alerting.formatting import slack_message
from include.vyapar.alerting.store import enqueue
from tests.alerting.conftest import failed_run
from tests.fakes.slack_server import fake_token, payload_problem

USER_TOKEN = fake_token("p", "1111-2222-abcdef")

HOSTILE = "<!channel> <!here> <@U123ABC> <http://evil.example|click here> a&b <script>x</script> 🙏 नमस्ते ₹4,999"


def test_hostile_payloads_are_escaped_and_truncated_and_slack_accepts_them(harness):
    error = (
        HOSTILE
        + "\n"
        + "\n".join(f"line {n}: Database Error in model fct_orders ```` <!channel> " + "x" * 60 for n in range(700))
    )
    assert len(error) > 50_000
    alert = failed_run(
        subject="fct_orders failed " + HOSTILE + " " + "s" * 400,
        summary=HOSTILE + " " + "y" * 5_000,
        facts={**{f"fact {n} {HOSTILE}": HOSTILE + "z" * 2_500 for n in range(45)}},
        links={
            "Task log <!here>" + "b" * 100: "http://airflow.test:8080/" + "p" * 4_000,
            "Ok": "http://airflow.test:8080/ok",
        },
        error=error,
        affected=[f"model.vyaparbazaar.m{n} <!channel>" for n in range(500)],
    )
    message = slack_message(alert.replace(severity="high"), alert_id=1)
    assert payload_problem(message.text, message.blocks, strict=True) is None
    # The fake really is strict: unescaped markup, or anything past Slack's limits, is refused.
    assert harness.slack.strict
    assert payload_problem("hi <!channel>", [], strict=True) == "strict_unescaped_markup"
    assert payload_problem("see <http://evil.example|click>", [], strict=True) == "strict_unescaped_markup"
    assert payload_problem("x" * 40_001, [], strict=True) == "msg_too_long"
    assert (
        payload_problem("x", [{"type": "section", "text": {"type": "mrkdwn", "text": "y" * 3_001}}], strict=True)
        == "invalid_blocks"
    )

    enqueue(alert)
    harness.drain()
    [posted] = harness.slack.messages_in("#data-oncall")
    assert not harness.store.list_deliveries("dead")
    dump = json.dumps(posted.blocks, ensure_ascii=False) + posted.text
    for literal in (
        "&lt;!channel&gt;",
        "&lt;!here&gt;",
        "&lt;@U123ABC&gt;",
        "&lt;http://evil.example|click here&gt;",
        "a&amp;b",
        "🙏",
        "नमस्ते",
        "₹4,999",
    ):
        assert literal in dump, literal
    assert "<!channel>" not in dump and "<http://evil" not in dump
    assert "more characters — see the log)" in dump
    code = next(b["text"]["text"] for b in posted.blocks if b.get("text", {}).get("text", "").startswith("```"))
    assert len(code) <= 3_000 and code.count("```") >= 2 and "truncated" in code.split("```")[-1]

    email = harness.smtp.messages[0]
    plain, html = harness.smtp.parts(email)
    assert "<!channel>" in plain and "🙏" in plain  # plain text shows it as written
    assert "&lt;!channel&gt;" in html and "<script>" not in html
    assert "\n" not in email["Subject"]


def test_secrets_never_appear_in_messages_or_logs(harness, monkeypatch, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE_PG", "postgresql://etl:Wh-Pa55word-zz@warehouse:5432/vyapar")
    caplog.set_level(logging.DEBUG)
    slack_token, smtp_password = harness.slack.token, harness.smtp.password
    leaked = (
        f"dbt failed: could not connect with token {slack_token} and smtp password {smtp_password}\n"
        "url postgresql://airflow:hunter2pass@db:5432/airflow\nenv password=s3cr3t-value; api_key: 'abcd-1234-efgh'\n"
        f"bearer {USER_TOKEN} and warehouse secret Wh-Pa55word-zz"
    )
    enqueue(
        failed_run(
            error=leaked, summary=f"token={slack_token}", facts={"Connection": f"Wh-Pa55word-zz / {smtp_password}"}
        )
    )
    harness.drain()
    # force an error path that logs the raw provider error too
    harness.slack.fail_next(1, "error", error=f"invalid_auth {slack_token}")
    enqueue(failed_run(dedup_key="second", error=leaked))
    harness.drain()

    secrets = [
        slack_token,
        smtp_password,
        "hunter2pass",
        "s3cr3t-value",
        "abcd-1234-efgh",
        USER_TOKEN,
        "Wh-Pa55word-zz",
    ]
    slack_payloads = [json.dumps([m.text, m.blocks, m.metadata], ensure_ascii=False) for m in harness.slack.messages]
    email_parts = [part for m in harness.smtp.messages for part in (m["Subject"], *harness.smtp.parts(m))]
    stored = json.dumps([harness.store.list_alerts(), harness.store.list_deliveries()], default=str)
    logs = caplog.text + "\n".join(str(r.args) for r in caplog.records)
    assert slack_payloads and len(email_parts) >= 6
    for secret in secrets:
        for where, text in [
            ("slack", "\n".join(slack_payloads)),
            ("email", "\n".join(email_parts)),
            ("store", stored),
            ("logs", logs),
        ]:
            assert secret not in text, f"{secret!r} leaked into {where}"
    assert "postgresql://airflow:***@db:5432/airflow" in "\n".join(email_parts)


def test_alert_subject_is_one_line_and_keeps_its_order_of_facts():
    alert = Alert(kind="slow", subject="fct_orders\nslow", facts={"b": 1, "a": 2})
    assert alert.subject == "fct_orders slow" and list(alert.facts) == ["b", "a"]
    assert Alert.from_json(alert.to_json()) == alert


def test_email_renders_only_web_and_mail_links_as_links(harness):
    links = {
        "Script": "javascript:alert(document.cookie)",
        "Shouting": "JAVASCRIPT:alert(1)",
        "Tabbed": "java\tscript:alert(1)",
        "Data": "data:text/html;base64,PHNjcmlwdD4=",
        "Runbook file": "docs/alerting.md",
        "Log": "https://airflow.test:8080/log",
        "On call": "mailto:oncall@vyaparbazaar.example",
    }
    enqueue(failed_run(links=links))
    harness.drain()

    _, html = harness.smtp.parts(harness.smtp.messages[0])
    hrefs = re.findall(r"""href=["']([^"']*)["']""", html)
    assert "https://airflow.test:8080/log" in hrefs and "mailto:oncall@vyaparbazaar.example" in hrefs
    assert all(href.startswith(("http://", "https://", "mailto:")) for href in hrefs), hrefs
    assert "Script: javascript:alert(document.cookie)" in html  # still shown, as text
    [posted] = harness.slack.messages_in("#data-oncall")
    buttons = [e["url"] for b in posted.blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons and all(url.startswith(("http://", "https://")) for url in buttons), buttons
