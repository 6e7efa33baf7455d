"""docs/runbooks.md as an HTML page, served behind the UI's login next to the health view: the link in every alert.

The Markdown is ours (trusted): its raw `<a id="…">` anchors, one per alert kind, pass through as written.
"""

from __future__ import annotations

import functools
from html import escape
from pathlib import Path

from markdown_it import MarkdownIt

from include.vyapar import settings

RUNBOOKS_MD = settings.REPO_ROOT / "docs" / "runbooks.md"
CSS = """
*{box-sizing:border-box}body{font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px 20px;
color:#1f2328;background:#f6f8fa}main{max-width:980px;margin:0 auto;background:#fff;border:1px solid #d0d7de;border-radius:10px;
padding:8px 28px 24px;overflow-wrap:anywhere}nav{font-size:13px;color:#57606a;max-width:980px;margin:0 auto 10px}a{color:#0b61c4}
h1{font-size:24px}h2{font-size:19px;margin-top:28px;padding-top:8px;border-top:1px solid #eaeef2}
code{font:12.5px ui-monospace,monospace;background:#f6f8fa;padding:1px 4px;border-radius:4px}
pre{background:#f6f8fa;padding:10px;border-radius:6px;overflow:auto}pre code{padding:0}
table{border-collapse:collapse}th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left}
p:has(>:target)+h2{background:#fff8c5}
"""


@functools.cache
def _render(path: Path, mtime_ns: int) -> str:  # noqa: ARG001 — the cache key: re-rendered when the file changes
    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(path.read_text(encoding="utf-8"))
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>VyaparBazaar alert runbooks</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head><body>'
        f'<nav><a href="./">← Pipeline health</a> · source: <code>{escape(path.name)}</code></nav>'
        f"<main>{body}</main></body></html>"
    )


def page(path: Path = RUNBOOKS_MD) -> str:
    return _render(path, path.stat().st_mtime_ns)
