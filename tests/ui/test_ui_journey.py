"""The on-call journey through the Airflow UI, in a real browser, on the newcomer's platform (`bin/start`).

The tests run in order and build on each other: log in and read the DAG list; a bad
`select` is refused by the trigger form; trigger a layer DAG with its params from the form and watch it succeed;
read the dbt log of a task; a failing run raises an alert; the pipeline-health view shows all of it; the dbt docs
are served; the health view is timed with a week of run history seeded through the alert store's API.
"""

from __future__ import annotations

import json
import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
import requests

from include.vyapar.alerting.alert import Alert
from include.vyapar.alerting.config import ALERT_KINDS
from include.vyapar.alerting.store import AlertStore
from include.vyapar.health.render import secs
from include.vyapar.pipeline.dag_factory import RESTORE_DAG_ID
from include.vyapar.pipeline.schedules import load_schedules
from tests.ui.conftest import UI_ARTIFACTS, wait_for
from tests.ui.test_health_layout import OVERFLOWING, WIDTHS

pytestmark = pytest.mark.slow

DAG = "vyapar_ml_features"  # a layer DAG: ml_customer_features -> ml_customer_segments
MODEL = "ml_customer_features"
MODEL_ID = f"model.vyaparbazaar.{MODEL}"
UNSELECTED = "ml_customer_segments"
BAD_SELECT = "ml_customer_features; rm -rf /"
RUN_TIMEOUT = 600
state: dict = {}  # what earlier steps left for later ones (run ids, figures)


def api(platform, path: str, method: str = "GET", **kwargs):
    response = requests.request(method, f"{platform['base']}{path}", headers=platform["headers"], timeout=30, **kwargs)
    response.raise_for_status()
    return response.json()


def health_json(platform) -> dict:
    return api(platform, "/vyapar-health/api/health")


def run_header(page, run_id: str):
    """The run page's heading block: the run id and its state badge (Queued / Running / Success / Failed)."""
    return page.locator("h2", has_text=run_id).first.locator("xpath=..")


def build_task(states: dict[str, str], model: str) -> str:
    """The task that builds a model: `dbt.<model>_model_build` (Cosmos local execution: one BUILD task per model)
    or `dbt.<model>.run` (watcher execution: a sensor per model, which runs dbt itself in a targeted run)."""
    for task_id in (f"dbt.{model}_model_build", f"dbt.{model}.run"):
        if task_id in states:
            return task_id
    raise AssertionError(f"no task builds {model}: {sorted(states)}")


def open_trigger_form(page, platform):
    page.goto(f"{platform['base']}/dags/{DAG}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=element_select]").wait_for()
    return dialog


# ------------------------------------------------------------------------------------------------------ steps
def test_login_then_the_dag_list_shows_every_dag_with_its_schedule_and_tags(platform, page, shots):
    page.goto(platform["base"] + "/")
    page.get_by_label("Username").wait_for()
    assert "/auth/login" in page.url
    shots(page, "01_login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(platform["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(platform["base"] + "/")
    page.get_by_text("Welcome").first.wait_for()
    # What a newcomer sees first: Airflow's home, with "Pipeline health" in the navigation.
    page.get_by_role("link", name="Pipeline health").wait_for()  # the plugins' menu items load after the page
    shots(page, "02_home_after_login")

    schedules = load_schedules()
    expected = {s.dag_id: s for s in (*schedules.all, *schedules.watchers)}
    manual = [RESTORE_DAG_ID]  # DAGs the factory builds beside the schedules: no schedule, triggered by hand
    page.goto(platform["base"] + "/dags?tags=vyaparbazaar")

    def listed():
        text = page.locator("main, body").first.inner_text()
        return text if all(dag_id in text for dag_id in (*expected, *manual)) else None

    text = wait_for(listed, 180, f"the {len(expected) + len(manual)} DAGs in the list", platform)
    assert f"{len(expected) + len(manual)} Dags" in text
    for dag_id, schedule in expected.items():
        card = re.search(rf"{dag_id}\n([^\n]*)\nSchedule\s+([^\n]+)", text)
        assert card, f"{dag_id}: no card with tags and schedule in\n{text[:3000]}"
        tags, cron = {t.strip() for t in card.group(1).split(",")}, card.group(2).strip()
        assert cron == schedule.cron, dag_id
        assert tags == {"vyaparbazaar", *schedule.tags}, dag_id
    shots(page, "03_dag_list", height=2400)


def test_the_trigger_form_refuses_a_bad_select_with_a_clear_message(platform, page, shots):
    runs_before = {r["dag_run_id"] for r in api(platform, f"/api/v2/dags/{DAG}/dagRuns")["dag_runs"]}
    dialog = open_trigger_form(page, platform)
    # The default (empty selector: the whole DAG) can be triggered: the param is optional.
    assert dialog.get_by_role("button", name="Trigger").is_enabled()
    dialog.locator("input[name=element_select]").fill(BAD_SELECT)
    with page.expect_response(
        lambda r: r.url.endswith(f"/dags/{DAG}/dagRuns") and r.request.method == "POST"
    ) as posted:
        dialog.get_by_role("button", name="Trigger").click()
    assert posted.value.status == 400
    message = dialog.get_by_text("Invalid input for param select")
    message.wait_for()
    text = message.inner_text()
    assert BAD_SELECT in text and "does not match" in text
    assert dialog.get_by_text(
        "Letters, digits and _ . : + * @ , / - and spaces only; no word may start with -"
    ).is_visible()
    shots(page, "04_bad_select_refused")
    runs = api(platform, f"/api/v2/dags/{DAG}/dagRuns")["dag_runs"]
    assert {r["dag_run_id"] for r in runs} == runs_before, "a refused trigger must not create a run"
    page.keyboard.press("Escape")


def test_trigger_a_layer_dag_with_params_from_the_form_and_see_it_succeed(platform, page, shots):
    dialog = open_trigger_form(page, platform)
    dialog.locator("input[name=element_select]").fill(MODEL)
    dialog.locator("#switch\\:element_full_refresh\\:control").click()
    assert dialog.locator("#switch\\:element_full_refresh").get_attribute("data-state") == "checked"
    shots(page, "05_trigger_form_with_params")
    with page.expect_response(
        lambda r: r.url.endswith(f"/dags/{DAG}/dagRuns") and r.request.method == "POST"
    ) as posted:
        dialog.get_by_role("button", name="Trigger").click()
    assert posted.value.status == 200, posted.value.text()
    run = posted.value.json()
    assert run["conf"] == {"full_refresh": True, "select": MODEL}
    run_id = state["run_id"] = run["dag_run_id"]

    page.wait_for_url(re.compile(rf".*/dags/{DAG}/runs/.*"))
    header = run_header(page, run_id)
    started = time.monotonic()
    final = wait_for(
        lambda: next((s for s in ("Success", "Failed") if s in header.inner_text()), None), RUN_TIMEOUT,
        f"run {run_id} to finish in the UI", platform, every=3,
    )  # fmt: skip
    state["run_seconds"] = time.monotonic() - started
    shots(page, "06_run_succeeded")
    assert final == "Success", header.inner_text()

    tasks = api(platform, f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances")["task_instances"]
    states = {t["task_id"]: t["state"] for t in tasks}
    state["task"] = build_task(states, MODEL)
    assert states[state["task"]] == "success", states
    assert states[build_task(states, UNSELECTED)] == "skipped", states  # the `select` param applied


def test_a_task_log_shows_dbt_output(platform, page, shots):
    page.goto(f"{platform['base']}/dags/{DAG}/runs/{quote(state['run_id'], safe='')}")
    task = state["task"]
    page.get_by_role("link", name=task, exact=True).click()
    page.wait_for_url(re.compile(rf".*/tasks/{re.escape(task)}.*"))
    page.get_by_text("Completed successfully").first.wait_for(timeout=60_000)
    log = page.locator("body").inner_text()
    assert re.search(rf"OK created sql \w+ model \w+\.{MODEL}", log), log[-3000:]
    shots(page, "07_task_log_dbt_output")
    # The form's full_refresh reached dbt (the command line is at the top of the same log; read it whole).
    path = f"/api/v2/dags/{DAG}/dagRuns/{quote(state['run_id'], safe='')}/taskInstances/{task}/logs/1"
    content = json.dumps(api(platform, path))
    assert "'--full-refresh'" in content, content[:3000]


def test_a_failing_run_raises_an_alert(platform):
    # A selector that passes the form's pattern but names no model: the run fails at once (no retries) and alerts.
    # Slack answers HTTP 500 from now on (until the module ends): the health view must show the delivery waiting.
    platform["slack"].fail_next(100_000, "500")
    # Unpaused as the trigger form does (the browser steps before may not have run: no Chromium on the machine).
    api(platform, f"/api/v2/dags/{DAG}", "PATCH", json={"is_paused": False})
    run = api(platform, f"/api/v2/dags/{DAG}/dagRuns", "POST",
              json={"logical_date": None, "conf": {"select": "no_such_model"}})  # fmt: skip
    run_id = state["failed_run_id"] = run["dag_run_id"]
    path = f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}"
    final = wait_for(lambda: (s := api(platform, path)["state"]) in ("success", "failed") and s, RUN_TIMEOUT,
                     "the failing run", platform, every=3)  # fmt: skip
    assert final == "failed"

    def alerted():
        alerts = [a for a in health_json(platform)["alerts"] if a["kind"] == "failed_run" and a["run_id"] == run_id]
        # Wait for the flusher's first attempt too (Slack answers 500: it fails and says why).
        return (
            alerts
            if alerts and all(d["attempts"] or d["status"] != "pending" for a in alerts for d in a["deliveries"])
            else None
        )

    alerts = wait_for(alerted, 180, "the failed-run alert and its first delivery attempt", platform, every=3)
    state["alert"] = next((a for a in alerts if a["status"] == "open"), alerts[0])
    assert state["alert"]["severity"] == "high"
    assert {d["channel"] for d in state["alert"]["deliveries"]} == {"slack", "email"}


def test_an_alerts_runbook_link_opens_its_section_behind_the_login(platform, page, shots):
    """The link in the failed-run alert (as sent to Slack and email) is the platform's own runbooks page, which
    opens for a logged-in recipient at the alert kind's section, and for no one else."""
    store = AlertStore(platform["store_url"])
    try:
        row = next(r for r in store.alerts_since(0) if r["id"] == state["alert"]["id"])
    finally:
        store.engine.dispose()
    link = row["alert"].links["Runbook"]
    assert link == f"{platform['base']}/vyapar-health/runbooks#failed-run", link
    url, anchor = link.split("#")

    assert requests.get(url, timeout=30).status_code == 401
    anonymous = requests.get(url, headers={"Accept": "text/html"}, allow_redirects=False, timeout=30)
    assert anonymous.status_code == 303 and "/auth/login" in anonymous.headers["location"]
    served = requests.get(url, headers=platform["headers"], timeout=30)
    assert served.status_code == 200, served.text[:500]
    for kind in ALERT_KINDS:  # every kind's section has its anchor
        assert f'id="{kind.replace("_", "-")}"' in served.text, kind

    # In the browser (logged in): the link opens at the section, whose heading is on screen.
    page.goto(link)
    assert page.locator(f"#{anchor}").count() == 1
    heading = page.locator("h2", has_text="failed_run (high)")
    box, viewport = heading.bounding_box(), page.viewport_size
    assert heading.is_visible() and 0 <= box["y"] < viewport["height"] / 2, box
    shots(page, "08a_runbook_link_opens_its_section")
    # ... and the health view links the runbooks too.
    page.goto(platform["base"] + "/vyapar-health/")
    page.get_by_role("link", name="alert runbooks").click()
    page.wait_for_url(re.compile(r".*/vyapar-health/runbooks$"))


def test_the_health_view_shows_what_this_test_did(platform, page, shots):
    snapshot = health_json(platform)
    page.goto(platform["base"] + "/")
    page.get_by_role("link", name="Pipeline health").click()
    page.wait_for_url(re.compile(r".*/plugin/pipeline-health"))
    view = page.frame_locator("iframe").first
    for panel in ("#freshness", "#outbox", "#alerts", "#durations", "#runs"):
        view.locator(panel).wait_for()
    shots(page, "08_health_view_in_the_ui")

    # Freshness: every raw table (just landed by bin/start) and every mart, with an age and a colour. The landing is
    # stamped with its hour (datagen's as-of, floored): landed at 09:58 and looked at at 10:01 it is 61 minutes old,
    # past dbt's 1-hour warn_after: amber, not yet stale.
    rows = view.locator("#freshness tr[data-node]")
    assert rows.count() == len(snapshot["freshness"]) >= 10
    for row in snapshot["freshness"]:
        if row["kind"] == "source":
            expected = "green" if row["age_seconds"] < 3600 else "amber"
            assert row["colour"] == expected and row["age_seconds"] < 2 * 3600, row
            assert view.locator(f'#freshness tr[data-node="{row["name"]}"][data-colour="{expected}"]').count() == 1

    # Durations: the model this test rebuilt, with the duration of its run.
    model = next(m for m in snapshot["models"] if m["node_id"] == MODEL_ID)
    ours = [p for p in model["points"] if p["run_id"] == state["run_id"]]
    assert ours, f"no duration of {MODEL} from run {state['run_id']}: {model['points']}"
    card = view.locator(f'#durations .model[data-model="{MODEL}"]')
    assert card.locator(".latest").inner_text() == secs(model["points"][-1]["seconds"])
    assert card.locator("svg.chart rect").count() == len(model["points"])

    # Alerts: the failed run's alert, open, high, with its channels and a link to the run in Airflow.
    alert = state["alert"]
    row = view.locator(f'#alerts tr[data-alert="{alert["id"]}"]')
    text = row.inner_text()
    assert "failed_run" in text and "high" in text and alert["status"] in text
    assert "slack #data-oncall" in text and "email data-oncall@vyaparbazaar.example" in text
    href = row.get_by_role("link", name="run ↗").get_attribute("href")
    assert href.startswith(f"../dags/{DAG}/runs/{quote(state['failed_run_id'], safe='')}")

    # Outbox: the backlog and the last delivery error (Slack answers HTTP 500; the email went to the mail catcher).
    # (The flusher keeps retrying while the test reads: compare with what the page itself says, not a snapshot.)
    waiting, dead = (int(view.locator(f"#outbox .{name}").inner_text()) for name in ("backlog", "dead"))
    assert waiting + dead >= 1
    last_error = view.locator("#outbox .last-error").inner_text()
    assert re.search(r"Slack API error .*HTTP 500", last_error), last_error

    # Latest runs from Airflow's metadata: our DAG's last run failed.
    assert "failed" in view.locator(f'#runs tr[data-dag="{DAG}"]').inner_text()

    # The page on its own (the iframe's content, whole) for the record.
    page.goto(platform["base"] + "/vyapar-health/")
    shots(page, "09_health_view_full_page", full_page=True)

    # The alert's link opens the run in the Airflow UI.
    page.goto(platform["base"] + "/plugin/pipeline-health")
    page.frame_locator("iframe").first.locator(f'#alerts tr[data-alert="{alert["id"]}"]').get_by_role(
        "link", name="run ↗"
    ).click()
    # The failed task's page (the alert is about plan_selection), in the UI itself (not inside the frame).
    page.wait_for_url(re.compile(rf".*/dags/{DAG}/runs/{re.escape(quote(state['failed_run_id'], safe=''))}/tasks/.*"))
    header = page.locator("h2", has_text="plan_selection").first.locator("xpath=..")
    wait_for(lambda: "Failed" in header.inner_text(), 30, "the failed task's page")
    shots(page, "10_alert_link_opens_the_failed_task")


def test_the_health_view_needs_the_ui_login(platform, browser):
    base = platform["base"]
    assert requests.get(f"{base}/vyapar-health/api/health", timeout=10).status_code == 401
    response = requests.get(
        f"{base}/vyapar-health/", headers={"Accept": "text/html"}, allow_redirects=False, timeout=10
    )
    assert response.status_code == 303 and "/auth/login" in response.headers["location"]
    forged = requests.get(f"{base}/vyapar-health/api/health", cookies={"_token": "not.a.jwt"}, timeout=10)
    assert forged.status_code in (401, 403)

    stranger = browser.new_context()
    try:
        page = stranger.new_page()
        page.goto(f"{base}/vyapar-health/")
        page.get_by_label("Username").wait_for()  # the login page, then back to the view
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(platform["password"])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/vyapar-health/?$"))
        page.locator("#durations").wait_for()
    finally:
        stranger.close()


def test_the_dbt_docs_are_served_in_the_ui(platform, page, shots):
    assert (platform["root"] / "data" / "dbt_docs" / "catalog.json").exists(), "bin/start generates the dbt docs"
    url = f"{platform['base']}/cosmos/vyaparbazaar/dbt_docs_index.html"
    assert requests.get(url, timeout=30).status_code == 401  # behind the UI's login, like the health view
    index = requests.get(url, headers=platform["headers"], timeout=30)
    assert index.status_code == 200 and "dbt" in index.text.lower()
    # The docs app renders a model's page from the served manifest and catalog (its columns come from the catalog).
    page.goto(f"{platform['base']}/cosmos/vyaparbazaar/dbt_docs_index.html#!/model/{MODEL_ID}")
    page.locator(f"text={MODEL} >> visible=true").first.wait_for(timeout=60_000)
    page.locator("text=customer_id >> visible=true").first.wait_for(timeout=30_000)
    shots(page, "11_dbt_docs")


# ------------------------------------------------------------------------------------------------ load time
def _seed_a_week(store: AlertStore, now: datetime) -> dict:
    """A week of hourly history through the store's API: every model's result and duration each hour, a slow
    alert (and its recovery) every few hours, a failed run each day; most deliveries sent, some not."""
    from include.vyapar.alerting import lineage

    rng = random.Random(7)
    models = sorted(uid for uid, node in lineage.manifest().nodes.items() if node.get("resource_type") == "model")
    typical = {uid: rng.uniform(0.3, 6.0) for uid in models}
    hours = 7 * 24
    results = 0
    for h in range(hours, 0, -1):
        at = now - timedelta(hours=h)
        run_id = f"scheduled__{at:%Y-%m-%dT%H:00:00+00:00}"
        for uid in models:
            seconds = typical[uid] * rng.uniform(0.8, 1.25) * (2.2 if rng.random() < 0.01 else 1)
            store.record_node_result(uid, "model", "success", seconds, dag_id="vyapar_staging", run_id=run_id,
                                     task_id=f"dbt.{uid.rsplit('.', 1)[-1]}_model_build", finished_at=at.timestamp())  # fmt: skip
            store.record_duration(uid, seconds, run_id)
            results += 1
        if h % 4 == 0:
            uid = models[h % len(models)]
            alert = Alert(kind="slow", subject=f"{uid} is slow: 2.2x its baseline", node_id=uid,
                          dag_id="vyapar_staging", run_id=run_id, occurred_at=at)  # fmt: skip
            store.enqueue(alert, now=at)
            store.enqueue(Alert(kind="recovered", subject=f"{uid} is back to normal", recovery_of=alert.dedup_key),
                          now=at + timedelta(minutes=50))  # fmt: skip
        if h % 24 == 7:
            store.enqueue(Alert(kind="failed_run", subject=f"vyapar_marts failed ({at:%d %b})", dag_id="vyapar_marts",
                                run_id=run_id, task_id="dbt.fct_orders_model_build"), now=at)  # fmt: skip
            store.enqueue(Alert(kind="recovered", subject="vyapar_marts recovered",
                                recovery_of="failed_run:vyapar_marts:dbt.fct_orders_model_build"),
                          now=at + timedelta(hours=1))  # fmt: skip
    # Deliver (mark sent) all but the last day's, like a healthy week.
    claimed = store.claim_due(now=(now - timedelta(days=1)).timestamp(), limit=100_000, lease_seconds=60)
    for delivery in claimed:
        store.mark_sent(delivery, f"seed-{delivery.id}", "C0SEED", delivery.alert.occurred_at.timestamp() + 2)
    return {"models": len(models), "node_results": results, "hours": hours, "delivered": len(claimed)}


def test_health_view_load_time_with_a_week_of_history(platform, context, shots):
    store = AlertStore(platform["store_url"])
    started = time.monotonic()
    seeded = _seed_a_week(store, datetime.now(UTC))
    seeded["seed_seconds"] = round(time.monotonic() - started, 1)
    seeded["alerts_in_window"] = store.count_alerts_since((datetime.now(UTC) - timedelta(days=7)).timestamp())
    store.engine.dispose()

    page = context.new_page()
    loads = []
    for _ in range(4):
        started = time.monotonic()
        page.goto(platform["base"] + "/vyapar-health/", wait_until="load")
        wall = time.monotonic() - started
        timing = page.evaluate(
            "() => { const n = performance.getEntriesByType('navigation')[0];"
            " return {ttfb: n.responseStart - n.requestStart, load: n.loadEventEnd - n.startTime, bytes: n.transferSize,"
            " server: n.serverTiming.map(t => [t.name, t.duration])}; }"
        )
        loads.append({"wall_seconds": wall, **timing})
    assert page.locator("#durations .model").count() >= seeded["models"]
    assert page.locator("#alerts tr[data-alert]").count() >= 50
    shots(page, "12_health_view_week_of_history", full_page=True)

    started = time.monotonic()
    page.goto(platform["base"] + "/plugin/pipeline-health")
    page.frame_locator("iframe").first.locator("#durations .model").first.wait_for()
    in_ui = time.monotonic() - started
    page.close()

    warm = [load["load"] for load in loads[1:]]
    report = {
        "seeded": seeded,
        "page_loads": loads,
        "first_load_ms": round(loads[0]["load"]),
        "median_warm_load_ms": round(statistics.median(warm)),
        "in_airflow_ui_seconds": round(in_ui, 2),
        "page_bytes": loads[-1]["bytes"],
    }
    (UI_ARTIFACTS / "health_load_time.json").write_text(json.dumps(report, indent=2))
    print(f"\nhealth view with a week of history: {json.dumps(report, indent=2)}")
    assert report["median_warm_load_ms"] < 5000, report


def test_no_panel_of_the_health_view_clips_at_1280_and_1920_px(platform, context, shots):
    """With this platform's week of history: the page alone and inside the Airflow UI, at both widths."""
    page = context.new_page()
    try:
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1000})
            page.goto(platform["base"] + "/vyapar-health/")
            page.locator("#freshness tr[data-node]").first.wait_for()
            assert page.evaluate(OVERFLOWING) == [], f"the page alone, {width} px"
            shots(page, f"13_health_view_{width}px")
            page.goto(platform["base"] + "/plugin/pipeline-health")
            page.frame_locator("iframe").first.locator("#freshness tr[data-node]").first.wait_for()
            frame = next(f for f in page.frames if "/vyapar-health/" in f.url)
            assert frame.evaluate(OVERFLOWING) == [], f"inside the Airflow UI, {width} px"
            shots(page, f"14_health_view_in_the_ui_{width}px")
    finally:
        page.close()
