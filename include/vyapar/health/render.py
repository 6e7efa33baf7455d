"""One self-contained HTML page for a `Snapshot`: inline CSS and SVG charts, nothing from a CDN (the one script
makes links to Airflow pages open in the UI itself)."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from zoneinfo import ZoneInfo

from include.vyapar import settings
from include.vyapar.health.snapshot import AMBER, GREEN, GREY, RED, FreshnessRow, ModelDurations, Snapshot

COLOURS = {GREEN: "#2e7d32", AMBER: "#ef8f00", RED: "#c62828", GREY: "#8a8f98"}
SEVERITY_COLOURS = {"low": "#5c6bc0", "medium": "#ef8f00", "high": "#c62828", "critical": "#7b1fa2"}
STATUS_COLOURS = {
    "open": RED, "resolved": GREEN, "silenced": GREY, "recovery": GREEN, "folded": AMBER, "repeat": AMBER,
    "sent": GREEN, "pending": AMBER, "sending": AMBER, "dead": RED, "success": GREEN, "failed": RED,
    "running": AMBER, "queued": GREY,
}  # fmt: skip
DBT_DOCS_URL = "../cosmos/vyaparbazaar/dbt_docs_index.html"
REFRESH_SECONDS = 120
# Inside the UI the page is an iframe sandboxed without top navigation: a link to an Airflow page (`data-ui`) is
# followed by the UI's own router (history + popstate in the parent, same origin), not inside the frame.
UI_LINKS_SCRIPT = """
document.addEventListener("click", function (event) {
  var link = event.target.closest("a[data-ui]");
  if (!link || window.top === window || event.ctrlKey || event.metaKey || event.shiftKey) return;
  try {
    var url = new URL(link.href);
    window.top.history.pushState(null, "", url.pathname + url.search + url.hash);
    window.top.dispatchEvent(new PopStateEvent("popstate", {state: null}));
    event.preventDefault();
  } catch (e) { /* not reachable: let the browser follow the link */ }
});
"""

CSS = """
*{box-sizing:border-box}body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px 20px;
color:#1f2328;background:#f6f8fa}h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:0 0 8px}
.sub{color:#57606a;font-size:12px}a{color:#0b61c4}header{display:flex;justify-content:space-between;align-items:flex-start;gap:16px;flex-wrap:wrap}
.chips{display:flex;gap:8px;flex-wrap:wrap;margin:10px 0 14px}.chip{padding:6px 10px;border-radius:8px;background:#fff;border:1px solid #d0d7de}
.chip b{font-size:16px}.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,680px),1fr));gap:14px}
section{background:#fff;border:1px solid #d0d7de;border-radius:10px;padding:12px 14px;overflow:auto}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{color:#57606a;font-weight:600}.dot{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;vertical-align:middle}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;color:#fff;font-size:12px;white-space:nowrap}
.models{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:10px}
.model{border:1px solid #eaeef2;border-radius:8px;padding:6px 8px}.model .name{font-weight:600;font-family:ui-monospace,monospace;font-size:12px}
.model .figs{font-size:12px;color:#57606a}pre{white-space:pre-wrap;word-break:break-word;background:#f6f8fa;padding:8px;border-radius:6px;margin:4px 0;font-size:12px}
.nw{white-space:nowrap}.brk{overflow-wrap:anywhere}.scroll{max-height:560px;overflow:auto}.error{color:#c62828}.muted{color:#8a8f98}.wide{grid-column:1/-1}.legend{font-size:12px;color:#57606a;margin:0 0 8px}
"""


def _tz() -> ZoneInfo:
    return ZoneInfo(settings.TIMEZONE)


def when(at: datetime | None) -> str:
    if at is None:
        return "—"
    return at.astimezone(_tz()).strftime("%d %b %H:%M")


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 72 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def secs(seconds: float | None) -> str:
    return "—" if seconds is None else (f"{seconds:.1f} s" if seconds < 600 else f"{seconds / 60:.1f} min")


def badge(text: str, colour: str | None = None) -> str:
    colour = colour or COLOURS.get(STATUS_COLOURS.get(text, GREY), COLOURS[GREY])
    return f'<span class="badge" style="background:{colour}">{escape(text)}</span>'


def dot(colour: str) -> str:
    return f'<span class="dot" style="background:{COLOURS[colour]}" title="{colour}"></span>'


def _panel_error(snapshot: Snapshot, panel: str) -> str:
    error = snapshot.errors.get(panel)
    return f'<p class="error">Could not read this panel: {escape(error)}</p>' if error else ""


# ------------------------------------------------------------------------------------------------- freshness
def age_bar(row: FreshnessRow, width: int = 140) -> str:
    """Age as a bar against the limit (the tick); the bar's scale ends at 1.5x the limit."""
    if row.age_seconds is None:
        return '<span class="muted">—</span>'
    scale = row.limit_seconds * 1.5
    filled = min(row.age_seconds, scale) / scale * width
    limit_x = row.limit_seconds / scale * width
    return (
        f'<svg width="{width}" height="12" role="img" aria-label="age {age(row.age_seconds)} of limit '
        f'{age(row.limit_seconds)}"><rect width="{width}" height="12" rx="3" fill="#eaeef2"/>'
        f'<rect width="{filled:.1f}" height="12" rx="3" fill="{COLOURS[row.colour]}"/>'
        f'<line x1="{limit_x:.1f}" x2="{limit_x:.1f}" y1="0" y2="12" stroke="#1f2328" stroke-width="2"/></svg>'
    )


def freshness_panel(snapshot: Snapshot) -> str:
    rows = []
    for r in snapshot.freshness:
        # The two halves wrap onto two lines in a narrow panel rather than push the table wider than it.
        last = f'<span class="nw">{when(r.last_at)}</span>' + (
            f' <span class="muted nw">(due {when(r.expected_at)})</span>' if r.expected_at else ""
        )
        rows.append(
            f'<tr data-node="{escape(r.name)}" data-colour="{r.colour}"><td>{dot(r.colour)}{escape(r.name)}</td>'
            f'<td>{r.kind}</td><td class="nw">{age(r.age_seconds)}</td><td>{age_bar(r)}</td><td>{last}</td>'
            f'<td class="muted">{escape(r.note)}</td></tr>'
        )
    limit = age(snapshot.freshness[0].limit_seconds) if snapshot.freshness else "2.0 h"
    return (
        f'<section id="freshness"><h2>Freshness</h2><p class="legend">Age of each raw table\'s latest landing and '
        f"each mart's latest successful build, against the {limit} limit (the tick). {dot(GREEN)}fresh "
        f"{dot(AMBER)}past dbt's warn_after / scheduled build pending {dot(RED)}stale: alerted {dot(GREY)}no data "
        f"yet</p>{_panel_error(snapshot, 'freshness')}<table><tr><th>table</th><th>kind</th><th>age</th><th>vs limit"
        f"</th><th>last landing / build</th><th></th></tr>{''.join(rows)}</table></section>"
    )


# ------------------------------------------------------------------------------------------------- durations
def duration_chart(model: ModelDurations, width: int = 280, height: int = 74) -> str:
    """Bars of the recent durations, the baseline (solid) and the slow-alert line at threshold x baseline (dashed)."""
    pad_l, pad_b, pad_t = 30, 4, 6
    baseline = model.baseline_seconds
    line = baseline * model.threshold_ratio if baseline else None
    top = max([p.seconds for p in model.points] + [line or 0, 0.001]) * 1.1
    plot_w, plot_h = width - pad_l - 2, height - pad_t - pad_b

    def y(value: float) -> float:
        return pad_t + plot_h - value / top * plot_h

    parts = [
        f'<svg class="chart" width="{width}" height="{height}" role="img" aria-label="durations of {escape(model.name)}">',
        f'<text x="0" y="{pad_t + 8}" font-size="9" fill="#57606a">{secs(top)}</text>',
        f'<line x1="{pad_l}" x2="{width}" y1="{pad_t + plot_h}" y2="{pad_t + plot_h}" stroke="#d0d7de"/>',
    ]
    n = max(len(model.points), 1)
    step = plot_w / max(n, 12)
    for i, p in enumerate(model.points):
        failed = p.status not in ("success", "pass")
        slow = line is not None and p.seconds > line
        fill = COLOURS[RED] if slow or failed else (COLOURS[GREY] if baseline is None else "#4f83cc")
        x, top_y = pad_l + i * step + 1, y(p.seconds)
        parts.append(
            f'<rect x="{x:.1f}" y="{top_y:.1f}" width="{max(step - 2, 1.5):.1f}" height="{pad_t + plot_h - top_y:.1f}" '
            f'fill="{fill}"><title>{when(p.finished_at)}: {secs(p.seconds)} ({escape(p.status)})'
            f" {escape(p.dag_id or '')} {escape(p.run_id or '')}</title></rect>"
        )
    if baseline:
        parts.append(
            f'<line x1="{pad_l}" x2="{width}" y1="{y(baseline):.1f}" y2="{y(baseline):.1f}" stroke="#1f2328" '
            f'stroke-width="1.2"><title>baseline {secs(baseline)}</title></line>'
        )
        parts.append(
            f'<line class="threshold" x1="{pad_l}" x2="{width}" y1="{y(line):.1f}" y2="{y(line):.1f}" stroke="{COLOURS[RED]}" '
            f'stroke-dasharray="4 3" stroke-width="1.2"><title>{model.threshold_ratio:.0%} of baseline: '
            f"{secs(line)}</title></line>"
            f'<text x="{width - 2}" y="{max(y(line) - 2, 8):.1f}" font-size="9" text-anchor="end" '
            f'fill="{COLOURS[RED]}">{model.threshold_ratio:.0%}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def durations_panel(snapshot: Snapshot) -> str:
    cards = []
    idle = []
    for m in snapshot.models:
        if not m.points:
            idle.append(m.name)
            continue
        latest = m.latest
        ratio = f"{m.ratio:.0%} of baseline" if m.ratio is not None else "no baseline yet"
        cards.append(
            f'<div class="model" data-model="{escape(m.name)}" data-colour="{m.colour}">'
            f'<div class="name">{dot(m.colour)}{escape(m.name)}</div>'
            f'<div class="figs">latest <b class="latest">{secs(latest.seconds)}</b> ({when(latest.finished_at)}) · '
            f'baseline <b class="baseline">{secs(m.baseline_seconds)}</b> · {ratio} · {len(m.points)} runs</div>'
            f"{duration_chart(m)}</div>"
        )
    idle_note = (
        f'<p class="muted">No runs recorded in the window: {escape(", ".join(sorted(idle)))}</p>' if idle else ""
    )
    threshold = snapshot.models[0].threshold_ratio if snapshot.models else 1.5
    return (
        f'<section id="durations" class="wide"><h2>dbt model durations</h2><p class="legend">The last runs of every '
        f"model (bars, newest right), its baseline (solid: median of its last successful runs) and the slow-alert line "
        f"at {threshold:.0%} of it (dashed). Slowest against their baseline first.</p>"
        f'{_panel_error(snapshot, "models")}<div class="models">{"".join(cards)}</div>{idle_note}</section>'
    )


# ------------------------------------------------------------------------------------------------- alerts
def alerts_panel(snapshot: Snapshot) -> str:
    rows = []
    for a in snapshot.alerts:
        channels = "<br>".join(
            f"{escape(d.channel)} {escape(d.destination)}: {badge(d.status)}"
            + (f" <span class='muted'>{d.attempts} tries</span>" if d.attempts > 1 else "")
            for d in a.deliveries
        )
        status = badge(a.status) + (f' <span class="muted">{escape(a.note)}</span>' if a.note else "")
        where = " · ".join(escape(x) for x in (a.dag_id, a.task_id) if x)
        link = f' <a href="{escape(a.run_url)}" data-ui>run ↗</a>' if a.run_url else ""
        rows.append(
            f'<tr data-alert="{a.id}" data-kind="{escape(a.kind)}" data-status="{escape(a.status)}">'
            f"<td>{when(a.created_at)}</td><td>{badge(a.severity or 'none', SEVERITY_COLOURS.get(a.severity))}</td>"
            f"<td>{status}</td><td>{escape(a.kind)}</td><td class='brk'>{escape(a.subject)}<div class='muted'>{where}{link}</div>"
            f"</td><td class='brk'>{channels or '<span class=muted>none</span>'}</td></tr>"
        )
    more = (
        f'<p class="muted">Showing the newest {len(snapshot.alerts)} of {snapshot.alerts_total}.</p>'
        if snapshot.alerts_total > len(snapshot.alerts)
        else ""
    )
    body = (
        f'<div class="scroll"><table><tr><th>when</th><th>severity</th><th>status</th><th>kind</th><th>what</th>'
        f"<th>channels · delivery</th></tr>{''.join(rows)}</table></div>"
        if rows
        else '<p class="muted">No alerts in the window.</p>'
    )
    return (
        f'<section id="alerts" class="wide"><h2>Alerts, last {snapshot.window_days} days '
        f'<span class="muted">({snapshot.alerts_total})</span></h2>{_panel_error(snapshot, "alerts")}{body}{more}</section>'
    )


def outbox_panel(snapshot: Snapshot) -> str:
    o = snapshot.outbox
    if o is None:
        return f'<section id="outbox"><h2>Alert outbox</h2>{_panel_error(snapshot, "outbox")}</section>'
    channels = sorted({c for counts in o.counts.values() for c in counts})
    statuses = [s for s in ("pending", "sending", "sent", "dead") if s in o.counts]
    head = "".join(f"<th>{escape(c)}</th>" for c in channels)
    body = "".join(
        f"<tr><td>{badge(s)}</td>" + "".join(f"<td>{o.counts[s].get(c, 0)}</td>" for c in channels) + "</tr>"
        for s in statuses
    )
    oldest = (
        f" · oldest undelivered since {when(o.oldest_pending_at)} "
        f"({age((snapshot.generated_at - o.oldest_pending_at).total_seconds())})"
        if o.oldest_pending_at
        else ""
    )
    error = (
        f"<p>Last delivery error ({escape(o.last_error_channel or '')}, {when(o.last_error_at)}, now "
        f"{badge(o.last_error_status or '')}):</p><pre class='last-error'>{escape(o.last_error[:2000])}</pre>"
        if o.last_error
        else '<p class="muted">No delivery error recorded.</p>'
    )
    return (
        f'<section id="outbox"><h2>Alert outbox</h2><p><b class="backlog">{o.backlog}</b> waiting to be delivered · '
        f'<b class="dead">{o.dead}</b> dead-lettered{oldest}</p>'
        f"<table><tr><th>status</th>{head}</tr>{body}</table>{error}</section>"
    )


def runs_panel(snapshot: Snapshot) -> str:
    rows = "".join(
        f'<tr data-dag="{escape(r.dag_id)}"><td>{escape(r.dag_id)}</td><td>{badge(r.state)}</td>'
        f"<td>{escape(r.run_type)}</td><td>{when(r.start_date)}</td><td>{when(r.end_date)}</td>"
        f'<td class="brk"><a href="{escape(r.run_url)}" data-ui>{escape(r.run_id)}</a></td></tr>'
        for r in snapshot.runs
    )
    body = (
        f"<table><tr><th>DAG</th><th>state</th><th>type</th><th>started</th><th>ended</th><th>run</th></tr>{rows}</table>"
        if rows
        else '<p class="muted">No runs yet.</p>'
    )
    return f'<section id="runs"><h2>Latest run of each DAG</h2>{_panel_error(snapshot, "runs")}{body}</section>'


def summary_chips(snapshot: Snapshot) -> str:
    red = sum(1 for f in snapshot.freshness if f.colour == RED)
    amber = sum(1 for f in snapshot.freshness if f.colour == AMBER)
    open_alerts = sum(1 for a in snapshot.alerts if a.status == "open")
    slow = sum(1 for m in snapshot.models if m.colour == RED)
    failed_runs = sum(1 for r in snapshot.runs if r.state == "failed")
    backlog = snapshot.outbox.backlog if snapshot.outbox else "?"
    chips = [
        (red, "stale tables", RED if red else GREEN), (amber, "ageing", AMBER if amber else GREEN),
        (open_alerts, "open alerts", RED if open_alerts else GREEN), (slow, "slow / failed models", RED if slow else GREEN),
        (failed_runs, "DAGs whose last run failed", RED if failed_runs else GREEN),
        (backlog, "alerts waiting in the outbox", AMBER if backlog else GREEN),
    ]  # fmt: skip
    return '<div class="chips">' + "".join(
        f'<div class="chip">{dot(colour)}<b>{value}</b> {label}</div>' for value, label, colour in chips
    ) + "</div>"  # fmt: skip


def page(snapshot: Snapshot) -> str:
    generated = snapshot.generated_at.astimezone(UTC)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>VyaparBazaar pipeline health</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}"><style>{CSS}</style></head><body>'
        f"<header><div><h1>VyaparBazaar pipeline health</h1><div class='sub'>As of {when(generated)} "
        f"({settings.TIMEZONE}; {generated:%H:%M} UTC) · refreshes every {REFRESH_SECONDS // 60} min · "
        f'<a href="{DBT_DOCS_URL}">dbt docs</a> · <a href="runbooks">alert runbooks</a> · <a href="../dags?tags=vyaparbazaar" '
        f'data-ui>all VyaparBazaar DAGs</a> · <a href="api/health">JSON</a></div></div></header>'
        f"{summary_chips(snapshot)}<div class='grid'>{freshness_panel(snapshot)}{outbox_panel(snapshot)}"
        f"{alerts_panel(snapshot)}{durations_panel(snapshot)}{runs_panel(snapshot)}</div>"
        f"<script>{UI_LINKS_SCRIPT}</script></body></html>"
    )
