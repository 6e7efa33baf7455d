"""Secret redaction applied to every string of an alert before it is stored, formatted, sent or logged."""

from __future__ import annotations

import json
import os
import re
import threading
from urllib.parse import unquote, urlsplit

MASK = "***"
_PATTERNS = [
    (re.compile(r"xox[abeoprs]-[A-Za-z0-9-]+"), "xox?-" + MASK),  # Slack tokens
    (re.compile(r"xapp-[A-Za-z0-9-]+"), "xapp-" + MASK),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MASK),
    # scheme://user:password@host — keep the user and host, drop the password
    (re.compile(r"(\b[a-z][a-z0-9+.-]{0,20}://[^\s:/@]{0,256}:)[^\s@/]+@", re.IGNORECASE), r"\1" + MASK + "@"),
    # password=..., "secret": "...", token: ...
    (
        re.compile(
            r"""(?i)\b((?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|token)["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"'}]+)"""
        ),
        r"\1" + MASK,
    ),
]
_registered: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret (e.g. a connection password fetched by a sender) so it is masked wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _registered.add(value)


def known_secrets() -> list[str]:
    """Registered secrets plus the password of every `AIRFLOW_CONN_*` connection in the environment."""
    secrets = set(_registered)
    for name, value in os.environ.items():
        if name.startswith("AIRFLOW_CONN_") and value:
            secret = _connection_password(value)
            if secret and len(secret) >= 4:
                secrets.add(secret)
    return sorted(secrets, key=len, reverse=True)  # longest first, so a secret containing another is masked whole


def redact(text: str, secrets: list[str] | None = None) -> str:
    """Mask known secrets and anything shaped like a credential."""
    if not text:
        return text
    for secret in known_secrets() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _connection_password(value: str) -> str | None:
    value = value.strip()
    if value.startswith("{"):
        try:
            return json.loads(value).get("password")
        except (ValueError, AttributeError):
            return None
    try:
        password = urlsplit(value).password
    except ValueError:
        return None
    return unquote(password) if password else None
