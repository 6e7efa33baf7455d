"""Senders: Slack (API or incoming webhook) and email through the Airflow provider hooks, with errors classified.

A `DeliveryError` is transient (retry later, honouring Retry-After) or permanent (dead-letter now). Only the
provider's own answer is ever permanent; an error raised in our process (set-up, logging, a bug) is `local`.
"""

from __future__ import annotations

import smtplib
import socket
import urllib.error
from dataclasses import dataclass
from email.utils import parseaddr
from functools import cached_property
from typing import Any

from include.vyapar.alerting.formatting import EmailContent, SlackMessage
from include.vyapar.alerting.redaction import redact, register_secret

# Slack answers these when retrying cannot help: credentials, destination or payload are wrong.
PERMANENT_SLACK_ERRORS = frozenset({
    "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission",
    "missing_scope", "not_allowed_token_type", "channel_not_found", "not_in_channel", "is_archived",
    "restricted_action", "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long",
    "no_text", "too_many_attachments", "invalid_arguments", "invalid_metadata_format", "invalid_metadata_schema",
    "metadata_too_large", "invalid_payload", "no_service", "no_service_id", "no_team", "team_disabled",
    "action_prohibited", "posting_to_general_channel_denied", "invalid_token", "channel_is_archived",
})  # fmt: skip
METADATA_EVENT = "vyapar_alert"


class DeliveryError(Exception):
    """A failed send. `raw` is the provider's own error (redacted), shown in the dead-letter email.

    `local`: the error came from this process, not from the provider (retried, the attempt not counted).
    `maybe_sent`: the request may have reached the provider with no answer back (a timeout): look before resending.
    """

    def __init__(
        self, raw: str, *, transient: bool, retry_after: float | None = None, local: bool = False,
        maybe_sent: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(raw)
        self.raw = raw
        self.transient = transient or local
        self.retry_after = retry_after
        self.local = local
        self.maybe_sent = maybe_sent


def _local_error(what: str, exc: BaseException) -> DeliveryError:
    return DeliveryError(redact(f"{what} failed in this process: {type(exc).__name__}: {exc}"), transient=True, local=True)


def _timed_out(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)
    return isinstance(exc, (socket.timeout, TimeoutError)) or isinstance(reason, (socket.timeout, TimeoutError))


@dataclass(frozen=True)
class Receipt:
    provider_id: str | None  # Slack message ts, or the email Message-ID
    provider_channel: str | None = None  # Slack channel id


def _network_error(exc: BaseException) -> bool:
    return isinstance(exc, (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError))


class SlackSender:
    """Slack Web API through the provider's SlackHook (`chat.postMessage`; threads with `thread_ts`)."""

    supports_threads = True

    def __init__(self, conn_id: str, timeout: float) -> None:
        self.conn_id = conn_id
        self.timeout = timeout

    @cached_property
    def client(self) -> Any:
        from airflow.providers.slack.hooks.slack import SlackHook

        # retry_handlers=[]: slack_sdk must neither hide a 429 nor sleep on it; the outbox schedules the retry.
        hook = SlackHook(slack_conn_id=self.conn_id, timeout=self.timeout, retry_handlers=[])
        client = hook.client
        register_secret(client.token)
        return client

    def load_secrets(self) -> None:
        """Fetch the connection now, so its token is masked in the message about to be formatted."""
        try:
            self.client  # noqa: B018 — registers the token
        except Exception:  # noqa: BLE001 — the send itself will report the problem
            pass

    def _ready_client(self) -> Any:
        try:
            return self.client
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ == "AirflowNotFoundException":  # connection not (yet) defined: retry, bounded
                raise DeliveryError(redact(f"Slack connection missing: {exc}"), transient=True) from None
            raise _local_error("Slack client set-up", exc) from None

    def send(
        self, destination: str, message: SlackMessage, *, thread_ts: str | None, alert_id: int, delivery_id: int
    ) -> Receipt:
        client = self._ready_client()
        try:
            response = client.chat_postMessage(
                channel=destination, text=message.text, blocks=message.blocks, thread_ts=thread_ts,
                unfurl_links=False, unfurl_media=False,
                metadata={"event_type": METADATA_EVENT, "event_payload": {"alert_id": alert_id, "delivery_id": delivery_id}},
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 — every failure is classified, none escapes
            raise self.classify(exc, posting=True) from None
        return Receipt(provider_id=response.get("ts"), provider_channel=response.get("channel"))

    def find_sent(self, destination: str, delivery_id: int, *, oldest: float, thread_ts: str | None) -> Receipt | None:
        """Look for a message this delivery already posted (a flusher died before recording it)."""
        self._ready_client()
        try:
            channel = self._channel_id(destination)
            if thread_ts:
                pages = self.client.conversations_replies(
                    channel=channel, ts=thread_ts, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200
                )
            else:
                pages = self.client.conversations_history(
                    channel=channel, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=200
                )
            for page in pages:  # SlackResponse iterates over cursor pages
                for message in page.get("messages", []):
                    metadata = message.get("metadata") or {}
                    payload = metadata.get("event_payload") or {}
                    if metadata.get("event_type") == METADATA_EVENT and str(payload.get("delivery_id")) == str(
                        delivery_id
                    ):
                        return Receipt(provider_id=message.get("ts"), provider_channel=channel)
        except Exception as exc:  # noqa: BLE001
            raise self.classify(exc) from None
        return None

    def _channel_id(self, destination: str) -> str:
        """conversations.history needs an id; `#name` is looked up with conversations.list."""
        if not destination.startswith("#"):
            return destination
        name = destination[1:]
        for page in self.client.conversations_list(types="public_channel,private_channel", limit=1000):
            for channel in page.get("channels", []):
                if channel.get("name") == name:
                    return channel["id"]
        raise DeliveryError(f"channel_not_found: {destination}", transient=False)

    @staticmethod
    def classify(exc: BaseException, *, posting: bool = False) -> DeliveryError:
        from slack_sdk.errors import SlackApiError

        if isinstance(exc, DeliveryError):
            return exc
        if isinstance(exc, SlackApiError):
            response = exc.response
            status = getattr(response, "status_code", 200)
            code = str(response.get("error", "") if hasattr(response, "get") else "") or f"http_{status}"
            raw = redact(f"Slack API error {code} (HTTP {status}): {exc}")
            if status == 429 or code == "ratelimited":
                return DeliveryError(raw, transient=True, retry_after=_retry_after(getattr(response, "headers", {})))
            if status >= 500:
                return DeliveryError(raw, transient=True)
            return DeliveryError(raw, transient=code not in PERMANENT_SLACK_ERRORS)
        if _network_error(exc):
            return DeliveryError(
                redact(f"Slack unreachable: {type(exc).__name__}: {exc}"), transient=True,
                maybe_sent=posting and _timed_out(exc),
            )  # fmt: skip
        if type(exc).__name__ == "AirflowNotFoundException":  # connection not (yet) defined: retry, bounded
            return DeliveryError(redact(f"Slack connection missing: {exc}"), transient=True)
        return _local_error("Slack send", exc)  # not Slack's answer: never permanent


class SlackWebhookSender:
    """Slack incoming webhook (SlackWebhookHook): one fixed channel, no threads, no way to look a message up."""

    supports_threads = False

    def __init__(self, conn_id: str, timeout: float) -> None:
        self.conn_id = conn_id
        self.timeout = timeout

    @cached_property
    def client(self) -> Any:
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        client = SlackWebhookHook(slack_webhook_conn_id=self.conn_id, timeout=self.timeout, retry_handlers=[]).client
        register_secret(client.url.rsplit("/services/", 1)[-1])
        return client

    def load_secrets(self) -> None:
        try:
            self.client  # noqa: B018 — registers the webhook token
        except Exception:  # noqa: BLE001
            pass

    def send(
        self, destination: str, message: SlackMessage, *, thread_ts: str | None, alert_id: int, delivery_id: int
    ) -> Receipt:
        try:
            response = self.client.send(
                text=message.text, blocks=message.blocks, unfurl_links=False, unfurl_media=False
            )
        except Exception as exc:  # noqa: BLE001
            if _network_error(exc):
                raise DeliveryError(
                    redact(f"Slack webhook unreachable: {type(exc).__name__}: {exc}"), transient=True
                ) from None
            raise _local_error("Slack webhook send", exc) from None  # not Slack's answer: never permanent
        if response.status_code == 200:
            return Receipt(provider_id=None, provider_channel=None)
        body = str(response.body or "").strip()
        raw = redact(f"Slack webhook error {body or 'no body'} (HTTP {response.status_code})")
        if response.status_code == 429:
            raise DeliveryError(raw, transient=True, retry_after=_retry_after(response.headers or {}))
        transient = response.status_code >= 500 or body not in PERMANENT_SLACK_ERRORS
        raise DeliveryError(raw, transient=transient)

    def find_sent(self, destination: str, delivery_id: int, *, oldest: float, thread_ts: str | None) -> Receipt | None:
        return None  # webhooks cannot read history: an interrupted send is sent again


class EmailSender:
    """Email through the SMTP provider's SmtpHook: multipart/alternative (plain text + HTML), stable Message-ID.

    An interrupted send cannot be checked, so a retry may deliver twice; both copies carry the same Message-ID,
    derived from the delivery id, which mail clients and servers use to drop the duplicate.
    """

    def __init__(self, conn_id: str, from_address: str, timeout: float) -> None:
        self.conn_id = conn_id
        self.from_address = from_address
        self.timeout = timeout
        self._secrets_loaded = False

    def load_secrets(self) -> None:
        """Fetch the SMTP connection's password (from any secrets backend) so formatting can mask it."""
        if self._secrets_loaded:
            return
        try:
            from airflow.providers.common.compat.sdk import BaseHook

            register_secret(BaseHook.get_connection(self.conn_id).password)
            self._secrets_loaded = True
        except Exception:  # noqa: BLE001 — the send itself will report the problem
            pass

    def message_id(self, delivery_id: int) -> str:
        domain = parseaddr(self.from_address)[1].rpartition("@")[2] or "vyaparbazaar.alerts"
        return f"<vyapar-alert-delivery-{delivery_id}@{domain}>"

    def send(self, destination: str, content: EmailContent, *, delivery_id: int) -> Receipt:
        message_id = self.message_id(delivery_id)
        hook = _alert_smtp_hook(self.conn_id, self.timeout, content.text)
        try:
            with hook:
                register_secret(hook.smtp_password)
                hook.send_email_smtp(
                    to=[address.strip() for address in destination.split(",") if address.strip()],
                    subject=content.subject, html_content=content.html, from_email=self.from_address,
                    mime_subtype="alternative",
                    custom_headers={"Message-ID": message_id, "X-Vyapar-Delivery-Id": str(delivery_id)},
                )  # fmt: skip
        except Exception as exc:  # noqa: BLE001
            raise self.classify(exc) from None
        return Receipt(provider_id=message_id)

    @staticmethod
    def classify(exc: BaseException) -> DeliveryError:
        raw = redact(f"SMTP error: {type(exc).__name__}: {exc}")
        if isinstance(
            exc, (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused, smtplib.SMTPNotSupportedError)
        ):
            return DeliveryError(raw, transient=False)
        if isinstance(exc, smtplib.SMTPResponseException):
            return DeliveryError(raw, transient=exc.smtp_code < 500)
        if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError)) or _network_error(exc):
            return DeliveryError(raw, transient=True)
        if "Unable to connect" in str(exc) or "not found" in str(exc):
            return DeliveryError(raw, transient=True)  # hook could not connect / connection not defined yet
        return _local_error("SMTP send", exc)  # not the server's answer: never permanent


def _alert_smtp_hook(conn_id: str, timeout: float, plain_text: str) -> Any:
    # SmtpHook with a plain-text part: it overrides a private method, so it lives with the patches (their guard)
    from include.vyapar.runtime.patches.smtp_plain_text import alert_smtp_hook

    return alert_smtp_hook(conn_id, timeout, plain_text)


def _retry_after(headers: Any) -> float | None:
    value = None
    for key in ("Retry-After", "retry-after"):
        value = headers.get(key) if hasattr(headers, "get") else None
        if value:
            break
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
