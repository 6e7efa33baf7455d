#!/usr/bin/python3
"""A mail catcher with Mailpit's SMTP port, HTTP API and `readyz` command (see Containerfile)."""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import sys
import threading
import urllib.request
import uuid
from datetime import UTC, datetime
from email.utils import getaddresses
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SMTP_BIND = os.environ.get("MP_SMTP_BIND_ADDR", "0.0.0.0:1025")
HTTP_BIND = os.environ.get("MP_UI_BIND_ADDR", "0.0.0.0:8025")
MESSAGES: list[dict] = []  # newest last; the API lists newest first
LOCK = threading.Lock()


def _split(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host or "0.0.0.0", int(port)


def _addresses(values) -> list[dict]:
    return [{"Name": name, "Address": addr} for name, addr in getaddresses([str(v) for v in values if v])]


def _body(msg, kind: str) -> str:
    part = msg.get_body(preferencelist=(kind,))
    return part.get_content() if part is not None else ""


def store(raw: bytes, envelope_to: list[str]) -> dict:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    text = _body(msg, "plain")
    record = {
        "ID": uuid.uuid4().hex,
        "MessageID": str(msg.get("Message-ID", "")).strip("<>"),
        "Read": False,
        "From": (_addresses([msg.get("From")]) or [{"Name": "", "Address": ""}])[0],
        "To": _addresses(msg.get_all("To", [])) or [{"Name": "", "Address": a} for a in envelope_to],
        "Cc": _addresses(msg.get_all("Cc", [])),
        "Bcc": [],
        "ReplyTo": _addresses(msg.get_all("Reply-To", [])),
        "Subject": str(msg.get("Subject", "")),
        "Created": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "Date": str(msg.get("Date", "")),
        "Tags": [],
        "Size": len(raw),
        "Attachments": sum(1 for _ in msg.iter_attachments()),
        "Snippet": " ".join(text.split())[:250],
        "Text": text,
        "HTML": _body(msg, "html"),
        "_raw": raw,
    }
    with LOCK:
        MESSAGES.append(record)
    return record


SUMMARY = (
    "ID",
    "MessageID",
    "Read",
    "From",
    "To",
    "Cc",
    "Bcc",
    "ReplyTo",
    "Subject",
    "Created",
    "Tags",
    "Size",
    "Attachments",
    "Snippet",
)
DETAIL = ("ID", "MessageID", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Date", "Tags", "Text", "HTML", "Size")


class Api(BaseHTTPRequestHandler):
    server_version = "mailpit-standin"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value, status: int = 200) -> None:
        self._send(status, json.dumps(value).encode())

    def do_GET(self):  # noqa: N802 - http.server's name
        path = self.path.split("?", 1)[0].rstrip("/")
        with LOCK:
            messages = list(reversed(MESSAGES))
        if path in ("/livez", "/readyz"):
            return self._send(200, b"ok", "text/plain")
        if path == "/api/v1/messages":
            listed = [{k: m[k] for k in SUMMARY} for m in messages]
            return self._json(
                {
                    "total": len(listed),
                    "unread": len(listed),
                    "count": len(listed),
                    "messages_count": len(listed),
                    "start": 0,
                    "tags": [],
                    "messages": listed,
                }
            )
        if path.startswith("/api/v1/message/"):
            rest = path[len("/api/v1/message/") :]
            ident, _, what = rest.partition("/")
            found = next((m for m in messages if m["ID"] == ident), None)
            if found is None:
                return self._send(404, b"message not found", "text/plain")
            if what == "raw":
                return self._send(200, found["_raw"], "text/plain")
            return self._json({k: found[k] for k in DETAIL} | {"Inline": [], "Attachments": []})
        if path == "":
            return self._send(200, b"<html><body>mailpit stand-in: see /api/v1/messages</body></html>", "text/html")
        return self._send(404, b"not found", "text/plain")

    def do_DELETE(self):  # noqa: N802
        if self.path.split("?", 1)[0].rstrip("/") == "/api/v1/messages":
            with LOCK:
                MESSAGES.clear()
            return self._send(200, b"ok", "text/plain")
        return self._send(404, b"not found", "text/plain")


class Handler:
    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        store(envelope.original_content or envelope.content, list(envelope.rcpt_tos))
        return "250 OK"


def serve() -> None:
    from aiosmtpd.controller import Controller

    smtp_host, smtp_port = _split(SMTP_BIND)
    controller = Controller(Handler(), hostname=smtp_host, port=smtp_port, ready_timeout=30)
    controller.start()
    http_host, http_port = _split(HTTP_BIND)
    httpd = ThreadingHTTPServer((http_host, http_port), Api)
    # PID 1 in its container: without a handler SIGTERM would be ignored and `stop` would wait for SIGKILL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"mailpit stand-in: SMTP on {smtp_host}:{smtp_port}, HTTP on {http_host}:{http_port}", flush=True)
    try:
        httpd.serve_forever()
    finally:
        controller.stop()


def readyz() -> int:
    _, port = _split(HTTP_BIND)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"not ready: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] in (["readyz"], ["livez"]):
        sys.exit(readyz())
    if args and args[0] not in ("--",):
        print(
            f"mailpit stand-in: unknown arguments {args} (this stand-in runs the server or `readyz`)", file=sys.stderr
        )
    serve()
