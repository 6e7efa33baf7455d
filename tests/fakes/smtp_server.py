"""A real local SMTP server (aiosmtpd) that keeps every message, and can go down and come back on the same port."""

from __future__ import annotations

import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeSmtp:
    """Accepts mail on 127.0.0.1:<port> (plain SMTP, optional AUTH LOGIN/PLAIN with the given user/password)."""

    def __init__(self, user: str = "alerts", password: str = "smtp-secret-pw-4242") -> None:
        self.port = free_port()
        self.user, self.password = user, password
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> FakeSmtp:
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, ready_timeout=5,
            authenticator=self._authenticate, auth_require_tls=False, auth_required=False,
        )  # fmt: skip
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def running(self) -> bool:
        return self._controller is not None

    def connection_json(self, *, with_login: bool = True) -> str:
        """The value for AIRFLOW_CONN_<ID>: an SMTP connection here, with TLS and SSL disabled (extras)."""
        conn: dict[str, Any] = {
            "conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "timeout": 5, "retry_limit": 0},
        }  # fmt: skip
        if with_login:
            conn.update(login=self.user, password=self.password)
        return json.dumps(conn)

    # aiosmtpd handler hooks
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        login = getattr(auth_data, "login", b"")
        password = getattr(auth_data, "password", b"")
        ok = login in (self.user, self.user.encode()) and password in (self.password, self.password.encode())
        return AuthResult(success=ok, handled=False)

    # helpers for assertions
    @staticmethod
    def parts(message: EmailMessage) -> tuple[str, str]:
        """(plain text, HTML) bodies of a multipart/alternative message."""
        plain = message.get_body(preferencelist=("plain",))
        rich = message.get_body(preferencelist=("html",))
        return (plain.get_content() if plain else ""), (rich.get_content() if rich else "")
