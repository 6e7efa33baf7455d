"""Render an alert as a Slack Block Kit message and as an email (HTML + plain text): redacted, escaped, within limits."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from include.vyapar import settings
from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import RECOVERED
from include.vyapar.alerting.redaction import known_secrets, redact, redact_url

# Slack's documented limits (chat.postMessage and Block Kit), counted conservatively in UTF-16 code units.
SLACK_TEXT_MAX = 40_000
SLACK_BLOCKS_MAX = 50
SLACK_SECTION_TEXT_MAX = 3_000
SLACK_HEADER_MAX = 150
SLACK_FIELDS_MAX = 10
SLACK_FIELD_TEXT_MAX = 2_000
SLACK_BUTTON_TEXT_MAX = 75
SLACK_URL_MAX = 3_000
SLACK_ACTIONS_MAX = 25
SLACK_CONTEXT_ELEMENTS_MAX = 10

ERROR_LINES_IN_SLACK = 25
ERROR_LINES_IN_EMAIL = 400
ERROR_CHARS_IN_EMAIL = 40_000
SEVERITY_EMOJI = {"low": "🔵", "medium": "🟡", "high": "🔴", "critical": "🚨"}
RESOLVED_EMOJI = "✅"
LINK_SCHEMES = frozenset({"http", "https", "mailto"})  # what an email may render as a link


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[dict[str, Any]]


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


def slack_escape(text: str) -> str:
    """Escape the three characters Slack parses, so `<!channel>`, `<@U1>` and `<url|label>` show literally."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_length(text: str) -> int:
    """Length as Slack's limits count it at most (UTF-16 code units: an emoji may count twice)."""
    return len(text.encode("utf-16-le")) // 2


def truncation_marker(omitted: int) -> str:
    return f"… (truncated, {omitted:,} more characters — see the log)"


def fit(text: str, limit: int, *, escape: bool = True, max_lines: int | None = None) -> str:
    """Escape (for Slack) and cut `text` to at most `limit` units, ending with a truncation marker when cut."""
    body, omitted = _clip(text, limit, escape=escape, max_lines=max_lines)
    if not omitted:
        return body
    marker = truncation_marker(omitted)
    body, _ = _clip(text, limit - slack_length(marker) - 1, escape=escape, max_lines=max_lines)
    return f"{body}\n{marker}" if body else marker


def _clip(text: str, limit: int, *, escape: bool, max_lines: int | None) -> tuple[str, int]:
    """The longest prefix (whole characters, never half an entity) whose rendering fits; and how many chars were left."""
    source = text
    if max_lines is not None:
        source = "\n".join(text.splitlines()[:max_lines])
    pieces, used = [], 0
    for index, char in enumerate(source):
        piece = slack_escape(char) if escape else char
        size = slack_length(piece)
        if used + size > limit:
            return "".join(pieces), len(text) - index
        pieces.append(piece)
        used += size
    return "".join(pieces), len(text) - len(source)


def redacted(alert: Alert, secrets: list[str] | None = None) -> Alert:
    """The same alert with every string passed through the secret redactor."""
    secrets = known_secrets() if secrets is None else secrets

    def clean(value: str | None) -> str | None:
        return None if value is None else redact(value, secrets)

    # Every string, ids too: a run id is whatever the triggering user typed.
    return alert.replace(
        subject=clean(alert.subject),
        summary=clean(alert.summary),
        facts={clean(k): clean(v) for k, v in alert.facts.items()},
        links={clean(k): redact_url(v, secrets) for k, v in alert.links.items()},
        error=clean(alert.error),
        dedup_key=clean(alert.dedup_key),
        dag_id=clean(alert.dag_id),
        task_id=clean(alert.task_id),
        run_id=clean(alert.run_id),
        node_id=clean(alert.node_id),
        owner=clean(alert.owner),
        recovery_of=clean(alert.recovery_of),
        affected=[clean(name) for name in alert.affected],
    )


def local_time(at: float | datetime) -> str:
    """A moment (epoch seconds or a datetime) in the platform's time zone, named: `2026-12-07 08:30:05 IST`."""
    moment = datetime.fromtimestamp(at, UTC) if isinstance(at, int | float) else at
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return moment.astimezone(ZoneInfo(settings.TIMEZONE)).strftime("%Y-%m-%d %H:%M:%S %Z")


def all_facts(alert: Alert) -> dict[str, str]:
    """The standard facts (DAG, task, model, run, owner, when) first, then the caller's own, in order."""
    standard = {
        "DAG": alert.dag_id,
        "Task": alert.task_id,
        "dbt model": alert.node_id,
        "Run id": alert.run_id,
        "Owner": alert.owner,
        "When (UTC)": alert.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
    }
    facts = {label: value for label, value in standard.items() if value and label not in alert.facts}
    facts.update({label: value for label, value in alert.facts.items() if value != ""})
    return facts


def headline(alert: Alert) -> str:
    if alert.kind == RECOVERED:
        return f"{RESOLVED_EMOJI} RESOLVED · {alert.subject}"
    severity = alert.severity or "alert"
    return f"{SEVERITY_EMOJI.get(severity, '⚠️')} {severity.upper()} · {alert.subject}"


def slack_message(alert: Alert, *, alert_id: int | None = None, note: str = "") -> SlackMessage:
    """Block Kit blocks plus the plain `text` fallback Slack shows in notifications."""
    alert = redacted(alert)
    note = redact(note)
    facts = all_facts(alert)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": fit(headline(alert), SLACK_HEADER_MAX), "emoji": True},
        },
    ]
    if alert.summary:
        blocks.append(_section(fit(alert.summary, SLACK_SECTION_TEXT_MAX)))
    if note:
        blocks.append(_section(fit(f"⚠️ {note}", SLACK_SECTION_TEXT_MAX)))
    items = list(facts.items())
    for start in range(0, min(len(items), 3 * SLACK_FIELDS_MAX), SLACK_FIELDS_MAX):
        fields = [_fact_field(label, value) for label, value in items[start : start + SLACK_FIELDS_MAX]]
        blocks.append({"type": "section", "fields": fields})
    if len(items) > 3 * SLACK_FIELDS_MAX:
        rest = "\n".join(f"{label}: {value}" for label, value in items[3 * SLACK_FIELDS_MAX :])
        blocks.append(_section(fit(rest, SLACK_SECTION_TEXT_MAX)))
    if alert.affected:
        listed = ", ".join(alert.affected)
        blocks.append(
            _section(fit(f"Also affected downstream ({len(alert.affected)}): {listed}", SLACK_SECTION_TEXT_MAX))
        )
    if alert.error.strip():
        blocks.append(_section(_code_block(alert.error, SLACK_SECTION_TEXT_MAX)))
    buttons, unlinkable = _buttons(alert.links)
    if buttons:
        blocks.append({"type": "actions", "elements": buttons[:SLACK_ACTIONS_MAX]})
    context = [
        f"kind `{alert.kind}`",
        f"incident `{alert.dedup_key}`",
        *([f"alert #{alert_id}"] if alert_id is not None else []),
        *[f"{label}: {url}" for label, url in unlinkable],
    ]
    elements = [{"type": "mrkdwn", "text": fit(item, SLACK_SECTION_TEXT_MAX)} for item in context]
    blocks.append({"type": "context", "elements": elements[:SLACK_CONTEXT_ELEMENTS_MAX]})
    return SlackMessage(text=_fallback_text(alert, facts, note), blocks=blocks[:SLACK_BLOCKS_MAX])


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _fact_field(label: str, value: str) -> dict[str, Any]:
    title = f"*{fit(label, 200)}*\n"
    return {"type": "mrkdwn", "text": title + fit(value, SLACK_FIELD_TEXT_MAX - slack_length(title))}


def _code_block(error: str, limit: int) -> str:
    # A ``` inside the error would close our code block early; break it with zero-width spaces.
    error = error.replace("```", "`\u200b`\u200b`")
    body, omitted = _clip(error, limit - 8, escape=True, max_lines=ERROR_LINES_IN_SLACK)
    if not omitted:
        return f"```\n{body}\n```"
    marker = truncation_marker(omitted)
    body, omitted = _clip(error, limit - 10 - slack_length(marker) - 12, escape=True, max_lines=ERROR_LINES_IN_SLACK)
    return f"```\n{body}\n```\n{truncation_marker(omitted)}"


def is_safe_link(url: str) -> bool:
    """Whether `url` may be rendered as a link: http(s) or mailto only, never javascript:, data: or a file path.

    Any whitespace or control character refuses it too: browsers drop them inside a scheme (`java\tscript:`)."""
    if not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return False
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return False
    return scheme in LINK_SCHEMES


def _buttons(links: dict[str, str]) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Link buttons for http(s) URLs Slack accepts; other links (a local runbook path) are listed as text."""
    buttons, unlinkable = [], []
    for index, (label, url) in enumerate(links.items()):
        if is_safe_link(url) and url.startswith(("http://", "https://")) and len(url) <= SLACK_URL_MAX:
            text = {"type": "plain_text", "text": fit(label, SLACK_BUTTON_TEXT_MAX), "emoji": True}
            buttons.append({"type": "button", "action_id": f"link_{index}", "text": text, "url": url})
        else:
            unlinkable.append((label, url[:500]))
    return buttons, unlinkable


def _fallback_text(alert: Alert, facts: dict[str, str], note: str) -> str:
    lines = [fit(headline(alert), 300)]
    if alert.summary:
        lines.append(fit(alert.summary, 3_000))
    if note:
        lines.append(fit(note, 3_000))
    lines += [fit(f"{label}: {value}", 500) for label, value in list(facts.items())[:40]]
    lines += [fit(f"{label}: {url}", SLACK_URL_MAX + 100) for label, url in list(alert.links.items())[:5]]
    if alert.error.strip():
        lines.append(fit(alert.error, 3_000, max_lines=10))
    text = "\n".join(lines)
    return text if slack_length(text) <= SLACK_TEXT_MAX else fit(text, SLACK_TEXT_MAX, escape=False)


def email_content(alert: Alert, *, alert_id: int | None = None, note: str = "") -> EmailContent:
    """Subject, plain-text and HTML bodies carrying the same facts, error excerpt and links."""
    alert = redacted(alert)
    note = redact(note)
    facts = all_facts(alert)
    severity = "RESOLVED" if alert.kind == RECOVERED else (alert.severity or "alert").upper()
    subject = " ".join(f"[VyaparBazaar][{severity}] {alert.subject}".split())[:250]  # one line: no header injection
    error = (
        fit(alert.error, ERROR_CHARS_IN_EMAIL, escape=False, max_lines=ERROR_LINES_IN_EMAIL)
        if alert.error.strip()
        else ""
    )
    reference = f"kind {alert.kind} · incident {alert.dedup_key}" + (
        f" · alert #{alert_id}" if alert_id is not None else ""
    )

    text_lines = [headline(alert), ""]
    if alert.summary:
        text_lines += [alert.summary, ""]
    if note:
        text_lines += [note, ""]
    text_lines += [f"{label}: {value}" for label, value in facts.items()]
    if alert.affected:
        text_lines += ["", f"Also affected downstream ({len(alert.affected)}): {', '.join(alert.affected)}"]
    if alert.links:
        text_lines += ["", *[f"{label}: {url}" for label, url in alert.links.items()]]
    if error:
        text_lines += ["", "Error:", error]
    text_lines += ["", reference]

    esc = html.escape
    rows = "".join(
        f"<tr><th align='left' style='padding-right:12px'>{esc(label)}</th><td>{esc(value)}</td></tr>"
        for label, value in facts.items()
    )
    parts = [f"<h2>{esc(headline(alert))}</h2>"]
    if alert.summary:
        parts.append(f"<p>{esc(alert.summary)}</p>")
    if note:
        parts.append(f"<p><strong>{esc(note)}</strong></p>")
    parts.append(f"<table>{rows}</table>")
    if alert.affected:
        parts.append(f"<p>Also affected downstream ({len(alert.affected)}): {esc(', '.join(alert.affected))}</p>")
    if alert.links:
        anchors = " · ".join(
            f'<a href="{esc(url)}">{esc(label)}</a>' if is_safe_link(url) else f"{esc(label)}: {esc(url)}"
            for label, url in alert.links.items()
        )
        parts.append(f"<p>{anchors}</p>")
    if error:
        parts.append(f"<pre style='white-space:pre-wrap'>{esc(error)}</pre>")
    parts.append(f"<p style='color:#666'>{esc(reference)}</p>")
    return EmailContent(
        subject=subject, text="\n".join(text_lines), html="<html><body>" + "".join(parts) + "</body></html>"
    )
