"""bin/start's local mail catcher, as Mailpit is compose's: an SMTP server (aiosmtpd) that keeps each email as an
`.eml` file and a web page that shows them, newest first (`/api/messages`: the same as JSON); 127.0.0.1 only.
`python -m include.vyapar.deploy.mailcatcher --smtp-port 1025 --web-port 8025 --dir <folder>`"""

from __future__ import annotations

import argparse
import email
import email.policy
import html
import json
import signal
import socket
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

HOST = "127.0.0.1"


class MailStore:
    """One `.eml` file a message, named by arrival (sortable), in one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def add(self, raw: bytes) -> str:
        with self._lock:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            name = f"{stamp}.eml"
            tmp = self.folder / f".{name}.tmp"
            tmp.write_bytes(raw)
            tmp.replace(self.folder / name)
        return name[:-4]

    def ids(self) -> list[str]:
        return sorted((p.stem for p in self.folder.glob("*.eml")), reverse=True)

    def get(self, message_id: str) -> EmailMessage | None:
        path = self.folder / f"{message_id}.eml"
        if "/" in message_id or not path.is_file():
            return None
        return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def _part(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def summary(message_id: str, message: EmailMessage) -> dict:
    return {
        "id": message_id,
        "received": datetime.strptime(message_id, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC).isoformat(),
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "text": _part(message, "plain"),
        "html": _part(message, "html"),
    }


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>
body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}} table{{border-collapse:collapse;width:100%}}
td,th{{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}}
pre{{white-space:pre-wrap;background:#f6f6f6;padding:.8rem}} iframe{{width:100%;height:60vh;border:1px solid #ddd}}
</style></head><body>{body}</body></html>"""


def _page(title: str, body: str) -> bytes:
    return PAGE.format(title=html.escape(title), body=body).encode()


def _index(store: MailStore) -> bytes:
    rows = []
    for message_id in store.ids():
        message = store.get(message_id)
        if message is None:
            continue
        s = summary(message_id, message)
        rows.append(
            f"<tr><td>{html.escape(s['received'][:19].replace('T', ' '))}</td><td>{html.escape(s['to'])}</td>"
            f"<td><a href='/message/{message_id}'>{html.escape(s['subject']) or '(no subject)'}</a></td></tr>"
        )
    table = "<table><tr><th>received (UTC)</th><th>to</th><th>subject</th></tr>" + "".join(rows) + "</table>"
    empty = "" if rows else "<p>No email yet. Alerts routed to email land here.</p>"
    return _page("Local mail", f"<h1>Local mail ({len(rows)})</h1><p>bin/start's mail catcher: nothing leaves "
                               f"this machine.</p>{table}{empty}")  # fmt: skip


def _message(message_id: str, message: EmailMessage) -> bytes:
    s = summary(message_id, message)
    head = "".join(
        f"<tr><th>{name}</th><td>{html.escape(s[key])}</td></tr>"
        for name, key in (("From", "from"), ("To", "to"), ("Subject", "subject"), ("Received", "received"))
    )
    shown = f"<iframe sandbox srcdoc=\"{html.escape(s['html'])}\"></iframe>" if s["html"] else ""
    return _page(s["subject"], f"<p><a href='/'>&larr; all mail</a></p><table>{head}</table>{shown}"
                               f"<h3>Plain text</h3><pre>{html.escape(s['text'])}</pre>")  # fmt: skip


def web_server(store: MailStore, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
            path = unquote(self.path.split("?", 1)[0])
            if path == "/":
                self._send(200, "text/html; charset=utf-8", _index(store))
            elif path == "/api/messages":
                messages = [summary(i, m) for i in store.ids() if (m := store.get(i)) is not None]
                self._send(200, "application/json", json.dumps({"messages": messages}).encode())
            elif path == "/readyz":
                self._send(200, "text/plain", b"ok")
            elif path.startswith("/message/") and (message := store.get(path.removeprefix("/message/"))):
                self._send(200, "text/html; charset=utf-8", _message(path.removeprefix("/message/"), message))
            else:
                self._send(404, "text/plain", b"not found")

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:  # quiet: bin/start's terminal is Airflow's
            pass

    return ThreadingHTTPServer((HOST, port), Handler)


def smtp_server(store: MailStore, port: int):
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 -- aiosmtpd's naming
            store.add(envelope.original_content or envelope.content)
            return "250 Message accepted for delivery"

    return Controller(Handler(), hostname=HOST, port=port)


def serve(folder: Path, smtp_port: int, web_port: int) -> None:
    store = MailStore(folder)
    smtp = smtp_server(store, smtp_port)
    smtp.start()
    web = web_server(store, web_port)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    threading.Thread(target=web.serve_forever, daemon=True).start()
    print(f"mail catcher: SMTP {HOST}:{smtp_port}, web page http://localhost:{web_port}, mail in {folder}", flush=True)
    stopping.wait()
    web.shutdown()
    smtp.stop()


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens on it, else a port the OS picks (two bin/starts side by side)."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind((HOST, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--web-port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, help="where the .eml files are kept")
    parser.add_argument("--free-ports", action="store_true", help="print the SMTP and web ports to use, and exit")
    args = parser.parse_args(argv)
    if args.free_ports:
        smtp = free_port(args.smtp_port)
        print(smtp, free_port(args.web_port if args.web_port != smtp else 0))
        return
    if args.dir is None:
        parser.error("--dir is required")
    try:
        serve(args.dir, args.smtp_port, args.web_port)
    except OSError as exc:  # a port in use: say which, and how to choose another
        raise SystemExit(f"mail catcher: cannot listen ({exc}); set SMTP_PORT / MAILPIT_PORT to free ports") from None


if __name__ == "__main__":
    main()
