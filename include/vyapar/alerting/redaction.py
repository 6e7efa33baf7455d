"""Secret redaction applied to every string of an alert before it is stored, formatted, sent or logged.

Credential shapes come from detect-secrets' maintained plugins; our own patterns cover only what they lack.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

from include.vyapar import settings

MASK = "***"
WITHHELD = MASK + " (text withheld: secret detection failed, see the log)"
log = logging.getLogger(__name__)

# What detect-secrets' plugins lack (each checked against detect-secrets 1.5):
_PATTERNS = [
    # A PEM private key, header to footer (or to the end of a cut-off text); PrivateKeyDetector flags the header line
    # only, which would leave the key itself readable.
    (
        re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S),
        MASK + " (private key)",
    ),
    # Slack tokens of any body (SlackDetector wants xox?-<digits>-…) and app-level xapp- tokens (it has none).
    (re.compile(r"xox[abeoprs]-[A-Za-z0-9-]+"), "xox?-" + MASK),
    (re.compile(r"xapp-[A-Za-z0-9-]+"), "xapp-" + MASK),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1" + MASK),
    # scheme://user:<password>@host: keep the user and host, drop the password. The password runs to the *last* @
    # before the host (an unencoded @ in it, postgresql://u:p@ss@h); BasicAuthDetector stops at the first one.
    # Anchored on "://" alone: a scheme glued to the text before it (xpostgresql://) must not hide the password.
    (re.compile(r"(://[^\s:/@]{0,256}:)[^\s/]+@"), r"\1" + MASK + "@"),
    # NAME=value, "name": "value" for names KeywordDetector has no word for (token, Fernet key), or with a value it
    # skips (one not starting with a letter or digit: PGPASSWORD=$x, aws_secret_access_key=/x). No \b before the name
    # (PG_PASSWORD, PGPASSWORD) and any word after it (SECRET_ACCESS_KEY), as KeywordDetector has.
    (
        re.compile(
            r"""(?i)((?:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|token|fernet[_-]?key|private[_-]?key)"""
            r"""\w*["']?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"'}]+)"""
        ),
        r"\1" + MASK,
    ),
]
_TOKEN_TAIL = re.compile(r"[A-Za-z0-9_+/=.-]*")
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
    for value in settings.connection_variables().values():
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
    try:
        return _mask_detected(text)
    except Exception as exc:  # noqa: BLE001 — e.g. a detect-secrets upgrade that moved a name: fail closed
        log.error("secret detection failed (%s): alert text withheld", type(exc).__name__)
        return WITHHELD


def redact_url(url: str, secrets: list[str] | None = None) -> str:
    """A link redacted as written and percent-decoded: a run id in a log URL carries its text encoded."""
    masked = redact(url, secrets)
    decoded = unquote(masked)
    if decoded == masked:
        return masked
    masked_decoded = redact(decoded, secrets)
    return masked if masked_decoded == decoded else masked_decoded


def _mask_detected(text: str) -> str:
    """Mask every span detect-secrets' plugins flag."""
    spans = sorted(_detected_spans(text))
    if not spans:
        return text
    pieces, last = [], 0
    for start, end in spans:
        if end <= last:
            continue
        start = max(start, last)
        pieces += [text[last:start], MASK]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _detected_spans(text: str) -> Iterator[tuple[int, int]]:
    regex_detectors, keyword_patterns, keyword_hint = _detectors()
    for detector in regex_detectors:
        for regex in detector.denylist:  # none of these patterns crosses a line
            for match in regex.finditer(text):
                if match.end() > match.start():
                    # The whole match (GitHubTokenDetector's one group is only the prefix), to the end of the token:
                    # a pattern written to detect may stop early (JwtTokenDetector's lazy signature).
                    yield match.start(), _TOKEN_TAIL.match(text, match.end()).end()
    if not keyword_hint.search(text):
        return
    offset = 0
    for line in text.splitlines(keepends=True):  # KeywordDetector's value runs to the end of a line, so one at a time
        if keyword_hint.search(line):
            for regex, group in keyword_patterns:
                for match in regex.finditer(line):
                    if match.end(group) > match.start(group):
                        yield offset + match.start(group), offset + match.end(group)  # the value only: PGPASSWORD=***
        offset += len(line)


@functools.cache
def _detectors() -> tuple[list, list, re.Pattern]:
    """detect-secrets' pattern plugins (every one it ships, so an upgrade brings its new ones), imported on first use
    (not at DAG parse time), and KeywordDetector's assignment shapes.

    Left out: BasicAuthDetector (its password stops at the first @, and masking its whole match would drop the user
    and host: our URL pattern covers it), IPPublicDetector (an address is not a credential, and errors name hosts),
    and the entropy detectors (they flag every hash and id).
    """
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.base import RegexBasedDetector

    left_out = {"BasicAuthDetector", "IPPublicDetector"}
    regex_detectors = [
        plugin()
        for plugin in get_mapping_from_secret_type_to_class().values()
        if issubclass(plugin, RegexBasedDetector) and plugin.__name__ not in left_out
    ]
    # KeywordDetector's assignment shapes (NAME=value, name: value, name = "value", "value" == name ...), with the
    # group that holds the value; the config-file set does not require quotes, the code set does.
    keyword_patterns = {
        **keyword.CONFIG_DENYLIST_REGEX_TO_GROUP,
        **keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    }
    # A line without any of KeywordDetector's words cannot match: skip its patterns there (they cost 20x the rest).
    keyword_hint = re.compile("|".join(keyword.DENYLIST), re.IGNORECASE)
    return regex_detectors, list(keyword_patterns.items()), keyword_hint


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
