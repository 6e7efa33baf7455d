"""The SMTP provider's SmtpHook sends an HTML email as multipart/alternative with the HTML part only: a client
that prefers text shows nothing readable. Here `_build_mime_message` (private) gets the alert's plain text as
the first alternative; the hook's timeout is bounded and its retries left to the alert outbox. No upstream issue
filed. Patches nothing: a subclass, built per delivery by include/vyapar/alerting/senders.py."""

from __future__ import annotations

from typing import Any


def alert_smtp_hook(conn_id: str, timeout: float, plain_text: str) -> Any:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    class AlertSmtpHook(SmtpHook):
        """SmtpHook that adds a plain-text alternative, bounds the timeout and leaves retrying to the outbox."""

        @property
        def timeout(self) -> int:
            return max(1, int(min(super().timeout, timeout)))

        @property
        def smtp_retry_limit(self) -> int:
            return 0

        def _build_mime_message(self, *args: Any, **kwargs: Any) -> Any:
            from email.mime.text import MIMEText

            message, recipients = super()._build_mime_message(*args, **kwargs)
            # multipart/alternative lists the plainest part first.
            message.set_payload([MIMEText(plain_text, "plain", "utf-8"), *message.get_payload()])
            return message, recipients

    return AlertSmtpHook(smtp_conn_id=conn_id)
