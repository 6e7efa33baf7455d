"""bin/start's mail catcher: what the alerting's SMTP sender sends arrives, and its web page shows it."""

from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage

import pytest
import requests

from include.vyapar.deploy.mailcatcher import free_port


@pytest.fixture
def catcher(tmp_path):
    smtp_port = free_port(0)
    web_port = free_port(0)
    proc = subprocess.Popen([sys.executable, "-m", "include.vyapar.deploy.mailcatcher", "--smtp-port", str(smtp_port),
                             "--web-port", str(web_port), "--dir", str(tmp_path / "mail")])  # fmt: skip
    base = f"http://127.0.0.1:{web_port}"
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, "the mail catcher exited"
        try:
            if requests.get(f"{base}/readyz", timeout=2).ok:
                break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the mail catcher did not answer within 30 s"
            time.sleep(0.2)
    yield {"smtp_port": smtp_port, "base": base, "dir": tmp_path / "mail"}
    proc.terminate()
    assert proc.wait(timeout=10) == 0


def test_an_alert_email_is_kept_and_shown_on_the_web_page(catcher):
    message = EmailMessage()
    message["From"] = "VyaparBazaar Data Alerts <data-alerts@vyaparbazaar.example>"
    message["To"] = "data-oncall@vyaparbazaar.example"
    message["Subject"] = "[HIGH] failed_run: vyapar_staging"
    message.set_content("vyapar_staging failed at dbt.stg_orders\nRunbook: http://localhost:8080/runbooks#failed-run")
    message.add_alternative("<p><b>vyapar_staging</b> failed at <code>dbt.stg_orders</code></p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", catcher["smtp_port"], timeout=10) as smtp:
        smtp.send_message(message)

    [kept] = requests.get(f"{catcher['base']}/api/messages", timeout=5).json()["messages"]
    assert kept["subject"] == "[HIGH] failed_run: vyapar_staging"
    assert kept["to"] == "data-oncall@vyaparbazaar.example"
    assert "failed at dbt.stg_orders" in kept["text"] and "<b>vyapar_staging</b>" in kept["html"]
    assert len(list(catcher["dir"].glob("*.eml"))) == 1

    index = requests.get(catcher["base"] + "/", timeout=5).text
    assert "[HIGH] failed_run: vyapar_staging" in index and f"/message/{kept['id']}" in index
    page = requests.get(f"{catcher['base']}/message/{kept['id']}", timeout=5)
    assert page.ok and "Runbook: http://localhost:8080/runbooks#failed-run" in page.text
    assert requests.get(f"{catcher['base']}/message/../../etc/passwd", timeout=5).status_code == 404


def test_a_busy_preferred_port_gives_way_to_a_free_one(catcher):
    assert free_port(catcher["smtp_port"]) != catcher["smtp_port"]
