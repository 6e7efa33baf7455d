"""A local Slack: Web API (chat.postMessage, conversations.*, auth.test) and incoming webhooks over real HTTP.

Checks tokens, channels and Slack's payload limits like Slack does, records accepted messages, and plays faults.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def fake_token(kind: str, body: str) -> str:
    """A Slack-shaped fake token, assembled at run time so the repo holds no token-shaped literal."""
    return f"xox{kind}-{body}"


WEBHOOK_PATH = "/services/" + "/".join(["TFAKE", "BFAKE", "fake-webhook"])  # Slack's incoming-webhook path shape
DEFAULT_CHANNELS = {"data-alerts": "C0DATAALERTS", "data-oncall": "C0DATAONCALL", "general": "C0GENERAL"}
# Alert text must never reach Slack as markup: a mention, a channel/user reference or a labelled link.
HOSTILE_MARKUP = re.compile(r"<[!@#][^>]*>|<[^>]*\|[^>]*>|<(?:https?|mailto|file|ftp):[^>]*>")


@dataclass
class Message:
    channel: str  # channel id
    text: str
    blocks: list[dict[str, Any]]
    ts: str
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    via: str = "api"


@dataclass
class Fault:
    kind: str  # "500" | "hang" | "429" | "error"
    error: str = ""
    retry_after: int = 1
    methods: tuple[str, ...] = ("chat.postMessage", "webhook")


@dataclass
class FakeSlack:
    token: str = field(default_factory=lambda: fake_token("b", "test-token"))
    strict: bool = True
    hang_seconds: float = 3.0
    channels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    messages: list[Message] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, outcome)
    timeline: list[tuple[float, str, str]] = field(default_factory=list)  # (epoch seconds, method, outcome)

    def __post_init__(self) -> None:
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._last_ts = 0.0
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-slack", daemon=True)

    # -- lifecycle
    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    def connection_json(self, token: str | None = None) -> str:
        """The value for AIRFLOW_CONN_<ID>: a Slack API connection whose base_url points here."""
        extra = {"base_url": self.api_url}
        return json.dumps({"conn_type": "slack", "password": token or self.token, "extra": extra})

    def webhook_connection_json(self) -> str:
        """The value for a Slack incoming-webhook connection (AIRFLOW_CONN_<ID>) pointing here."""
        return json.dumps({"conn_type": "slackwebhook", "password": self.webhook_url})

    # -- programming faults
    def fail_next(
        self,
        count: int,
        kind: str = "500",
        *,
        error: str = "",
        retry_after: int = 1,
        methods: tuple[str, ...] | None = None,
    ) -> None:
        """The next `count` matching requests answer HTTP 500 / hang / 429 (Retry-After) / an `ok: false` error code."""
        fault = Fault(kind=kind, error=error, retry_after=retry_after, methods=methods or Fault.methods)
        with self._lock:
            self._faults.extend([fault] * count)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def post_directly(self, channel: str, text: str, metadata: dict[str, Any] | None = None) -> Message:
        """Put a message in a channel as if an earlier process had posted it."""
        return self._record(self.channels[channel.lstrip("#")], text, [], None, metadata, "api")

    # -- queries for tests
    def messages_in(self, channel: str) -> list[Message]:
        channel_id = self.channels.get(channel.lstrip("#"), channel)
        return [m for m in self.messages if m.channel == channel_id]

    def attempts_at(self, method: str = "chat.postMessage") -> list[tuple[float, str]]:
        """When each request of `method` arrived, and how it was answered (oldest first)."""
        return [(at, outcome) for at, m, outcome in self.timeline if m == method]

    def count(self, method: str, outcome: str | None = None) -> int:
        return sum(1 for m, o in self.requests if m == method and (outcome is None or o == outcome))

    # -- internals
    def _note(self, method: str, outcome: str) -> None:
        with self._lock:
            self.requests.append((method, outcome))
            self.timeline.append((time.time(), method, outcome))

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            if self._faults and method in self._faults[0].methods:
                return self._faults.popleft()
        return None

    def _record(
        self, channel_id: str, text: str, blocks: list, thread_ts: str | None, metadata: Any, via: str
    ) -> Message:
        with self._lock:
            now = max(time.time(), self._last_ts + 0.000001)
            self._last_ts = now
            message = Message(channel_id, text, blocks, f"{now:.6f}", thread_ts, metadata, via)
            self.messages.append(message)
            return message

    def _channel_id(self, channel: str) -> str | None:
        if channel in self.channels.values():
            return channel
        return self.channels.get(channel.lstrip("#"))


def payload_problem(text: str, blocks: list[dict[str, Any]], *, strict: bool) -> str | None:
    """The error Slack would answer for this payload (msg_too_long, invalid_blocks, no_text), or None."""
    if not text and not blocks:
        return "no_text"
    if len(text) > 40_000:
        return "msg_too_long"
    if not isinstance(blocks, list) or len(blocks) > 50:
        return "invalid_blocks"
    texts = [text]
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            value = block.get("text", {}).get("text", "")
            if block["text"].get("type") != "plain_text" or len(value) > 150:
                return "invalid_blocks"
            texts.append(value)
        elif kind == "section":
            if "text" in block:
                value = block["text"].get("text", "")
                if not value or len(value) > 3_000:
                    return "invalid_blocks"
                texts.append(value)
            fields = block.get("fields", [])
            if len(fields) > 10 or any(not f.get("text") or len(f["text"]) > 2_000 for f in fields):
                return "invalid_blocks"
            if "text" not in block and not fields:
                return "invalid_blocks"
            texts += [f["text"] for f in fields]
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > 10 or any(len(e.get("text", "")) > 3_000 for e in elements):
                return "invalid_blocks"
            texts += [e.get("text", "") for e in elements]
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > 25:
                return "invalid_blocks"
            for element in elements:
                label, url = element.get("text", {}).get("text", ""), element.get("url", "")
                if not label or len(label) > 75 or len(url) > 3_000:
                    return "invalid_blocks"
                texts.append(label)
        elif kind == "divider":
            continue
        else:
            return "invalid_blocks"
    if strict and any(HOSTILE_MARKUP.search(value) for value in texts):
        return "strict_unescaped_markup"
    return None


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet test output
            pass

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def _params(self) -> dict[str, Any]:
            url = urlsplit(self.path)
            params: dict[str, Any] = {k: v[0] for k, v in parse_qs(url.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            self._raw_body = body
            content_type = self.headers.get("Content-Type", "")
            if body and "json" in content_type:
                params.update(json.loads(body))
            elif body:
                for key, values in parse_qs(body.decode()).items():
                    params[key] = values[0]
            for key in ("blocks", "metadata"):
                if isinstance(params.get(key), str):
                    params[key] = json.loads(params[key])
            return params

        def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header(
                "Content-Type", "text/plain" if isinstance(body, str) else "application/json; charset=utf-8"
            )
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a "hang" fault): nothing to answer

        def _dispatch(self) -> None:
            path = urlsplit(self.path).path
            is_webhook = path == WEBHOOK_PATH
            method = "webhook" if is_webhook else path.removeprefix("/api/")
            try:
                params = self._params()
            except (ValueError, json.JSONDecodeError):
                fake._note(method, "invalid_payload")
                return (
                    self._send(400, "invalid_payload")
                    if is_webhook
                    else self._send(200, {"ok": False, "error": "invalid_json"})
                )
            fault = fake._take_fault(method)
            if fault is not None:
                fake._note(method, f"fault:{fault.kind}")
                if fault.kind == "hang":
                    fake._stopping.wait(fake.hang_seconds)
                    return self._send(500, "Internal Server Error")
                if fault.kind == "500":
                    return self._send(500, "Internal Server Error")
                if fault.kind == "429":
                    body = "rate_limited" if is_webhook else {"ok": False, "error": "ratelimited"}
                    return self._send(429, body, {"Retry-After": str(fault.retry_after)})
                return (
                    self._send(400, fault.error) if is_webhook else self._send(200, {"ok": False, "error": fault.error})
                )
            if is_webhook:
                return self._webhook(params)
            if not path.startswith("/api/"):
                return self._send(404, "not found")
            auth = self.headers.get("Authorization", "")
            if not auth:
                fake._note(method, "not_authed")
                return self._send(200, {"ok": False, "error": "not_authed"})
            if auth != f"Bearer {fake.token}":
                fake._note(method, "invalid_auth")
                return self._send(200, {"ok": False, "error": "invalid_auth"})
            handler = {
                "auth.test": self._auth_test, "chat.postMessage": self._post_message,
                "conversations.history": self._history, "conversations.replies": self._replies,
                "conversations.list": self._list,
            }.get(method)  # fmt: skip
            if handler is None:
                fake._note(method, "unknown_method")
                return self._send(200, {"ok": False, "error": "unknown_method"})
            handler(method, params)

        def _answer(self, method: str, body: dict[str, Any]) -> None:
            fake._note(method, "ok" if body.get("ok") else body.get("error", "error"))
            self._send(200, body)

        def _auth_test(self, method: str, params: dict[str, Any]) -> None:
            self._answer(
                method,
                {"ok": True, "team": "VyaparBazaar", "user": "alerts-bot", "team_id": "T000", "user_id": "U0BOT"},
            )

        def _post_message(self, method: str, params: dict[str, Any]) -> None:
            channel_id = fake._channel_id(str(params.get("channel", "")))
            if channel_id is None:
                return self._answer(method, {"ok": False, "error": "channel_not_found"})
            text, blocks = params.get("text") or "", params.get("blocks") or []
            problem = payload_problem(text, blocks, strict=fake.strict)
            if problem:
                return self._answer(method, {"ok": False, "error": problem})
            message = fake._record(channel_id, text, blocks, params.get("thread_ts"), params.get("metadata"), "api")
            self._answer(
                method,
                {"ok": True, "channel": channel_id, "ts": message.ts, "message": {"text": text, "ts": message.ts}},
            )

        def _as_api_message(self, message: Message, with_metadata: bool) -> dict[str, Any]:
            record = {"type": "message", "text": message.text, "ts": message.ts, "blocks": message.blocks}
            if message.thread_ts:
                record["thread_ts"] = message.thread_ts
            if with_metadata and message.metadata:
                record["metadata"] = message.metadata
            return record

        def _history(self, method: str, params: dict[str, Any]) -> None:
            channel_id = fake._channel_id(str(params.get("channel", "")))
            if channel_id is None or str(params.get("channel", "")).startswith("#"):
                return self._answer(method, {"ok": False, "error": "channel_not_found"})  # Slack wants an id here
            oldest = float(params.get("oldest") or 0)
            metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
            found = [
                self._as_api_message(m, metadata) for m in reversed(fake.messages)
                if m.channel == channel_id and m.thread_ts is None and float(m.ts) > oldest
            ]  # fmt: skip
            self._answer(method, {"ok": True, "messages": found[: int(params.get("limit") or 100)], "has_more": False})

        def _replies(self, method: str, params: dict[str, Any]) -> None:
            channel_id = fake._channel_id(str(params.get("channel", "")))
            if channel_id is None:
                return self._answer(method, {"ok": False, "error": "channel_not_found"})
            parent, oldest = str(params.get("ts", "")), float(params.get("oldest") or 0)
            metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
            thread = [
                self._as_api_message(m, metadata) for m in fake.messages
                if m.channel == channel_id and (m.ts == parent or m.thread_ts == parent) and float(m.ts) > oldest
            ]  # fmt: skip
            self._answer(method, {"ok": True, "messages": thread, "has_more": False})

        def _list(self, method: str, params: dict[str, Any]) -> None:
            channels = [{"id": cid, "name": name, "is_channel": True} for name, cid in fake.channels.items()]
            self._answer(method, {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}})

        def _webhook(self, params: dict[str, Any]) -> None:
            text, blocks = params.get("text") or "", params.get("blocks") or []
            problem = payload_problem(text, blocks, strict=fake.strict)
            if problem:
                fake._note("webhook", problem)
                return self._send(400, "invalid_payload" if problem == "no_text" else problem)
            fake._record(fake.channels["data-alerts"], text, blocks, None, params.get("metadata"), "webhook")
            fake._note("webhook", "ok")
            self._send(200, "ok")

    return Handler
