"""The health page's layout in a real browser at the widths on-call screens have (1280 and 1920 px): no panel or
table is wider than the room it has (the Freshness panel clipped its last column, "(due 07 D…"). The page is
rendered from a snapshot holding the longest content each panel shows; no platform needed. The same check runs
against the platform's own page (and inside the Airflow UI) in test_ui_journey.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from include.vyapar.health import render
from include.vyapar.health.snapshot import (
    AMBER,
    GREEN,
    GREY,
    AlertRow,
    DagRunRow,
    Delivery,
    FreshnessRow,
    Outbox,
    Snapshot,
)
from tests.ui.conftest import UI_ARTIFACTS

WIDTHS = (1280, 1920)
# Every panel, and every table and preformatted block in one: (what, scrollWidth, clientWidth) of those that
# are wider than their box (they would scroll or clip).
OVERFLOWING = """() => [...document.querySelectorAll('section, section table, section pre, section .scroll')]
  .filter(e => e.scrollWidth > e.clientWidth + 1)
  .map(e => [(e.closest('section') || e).id + ' ' + e.tagName.toLowerCase(), e.scrollWidth, e.clientWidth])"""


def crowded_snapshot() -> Snapshot:
    """The longest names, due dates, notes, run ids, alert subjects and errors the page shows."""
    now = datetime.now(UTC)
    freshness = [
        FreshnessRow(
            f"model.vyaparbazaar.{name}",
            name,
            kind,
            "fresh",
            colour,
            age,
            7200,
            now - timedelta(seconds=age) if age else None,
            now + timedelta(hours=1) if kind == "mart" else None,
            note,
        )  # fmt: skip
        for name, kind, colour, age, note in [
            ("mart_customer_overview", "mart", AMBER, 20 * 3600, "scheduled build pending"),
            ("mart_campaign_performance", "mart", GREEN, 3000, ""),
            ("product_reviews", "source", AMBER, 4000, "older than dbt's warn_after"),
            ("email_campaigns", "source", GREY, None, "no landing yet"),
        ]
    ]
    run_id = "scheduled__2026-12-07T05:30:00+00:00"
    error = "SlackApiError: The request to the Slack API failed. (url: https://slack.com/api/chat.postMessage) " * 4
    return Snapshot(
        now, 7, freshness=freshness, alerts_total=1,
        alerts=[AlertRow(1, now, "data_quality", "low", "open",
                         "source_not_null_vyaparbazaar_raw_clickstream_event_id warned: 3 rows", "k", "open",
                         "vyapar_ml_features", run_id, "dbt.ml_customer_segments_model_build", "../dags/x",
                         [Delivery("slack", "#data-alerts", "pending", 3, None),
                          Delivery("email", "data-oncall@vyaparbazaar.example", "sent", 1, None)])],
        outbox=Outbox(3, 1, {"pending": {"slack": 2, "email": 1}, "dead": {"slack": 1}}, now, error, "slack", now,
                      "dead"),
        runs=[DagRunRow("vyapar_business_month_end_finance", "manual__2026-12-07T05:30:00.123456+00:00", "success",
                        "manual", now, now, f"../dags/x/runs/{run_id}")],
    )  # fmt: skip


@pytest.mark.parametrize("width", WIDTHS)
def test_no_panel_of_the_health_page_clips_at_common_screen_widths(browser, width):
    context = browser.new_context(viewport={"width": width, "height": 1000})
    try:
        page = context.new_page()
        page.set_content(render.page(crowded_snapshot()))
        assert page.locator("#freshness tr[data-node]").count() == 4
        overflowing = page.evaluate(OVERFLOWING)
        UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(UI_ARTIFACTS / f"health_layout_{width}.png"), full_page=True)
        assert overflowing == [], f"wider than their panel at {width} px: {overflowing}"
        # The due time is on the page whole, not cut ("(due 07 D…").
        due = page.locator('#freshness tr[data-node="mart_customer_overview"] .muted.nw')
        box, cell = due.bounding_box(), due.locator("xpath=..").bounding_box()
        assert box["x"] + box["width"] <= cell["x"] + cell["width"] + 1
    finally:
        context.close()
