"""Browser tests of the Airflow UI: one platform started with `bin/start` (own data folder, free port) per module,
driven by Playwright through Debian's Chromium (`apt-get install -y chromium`; Playwright cannot download browsers
here). Screenshots go to `<test session dir>/ui/` and to `test-artifacts/ui/` (git-ignored), one per step.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.bin_start import bin_start, free_port
from tests.conftest import ARTIFACTS, session_dir

CHROMIUM = os.environ.get("VYAPAR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-default-apps", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1440, "height": 900}
UI_ARTIFACTS = ARTIFACTS / "ui"


def wait_for(predicate, timeout: float, what: str, platform: dict | None = None, every: float = 2.0):
    """Poll until `predicate()` is truthy; fail naming `what` (with the end of bin/start's log when there is one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = platform and platform["proc"]
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"bin/start exited ({proc.returncode}) waiting for {what}:\n{_tail(platform)}")
        try:
            value = predicate()
            if value:
                return value
        except (requests.RequestException, PlaywrightTimeout):  # a busy machine: ask again until the deadline
            pass
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{_tail(platform) if platform else ''}")


def _tail(platform: dict) -> str:
    return platform["log"].read_text(errors="replace")[-5000:]


@pytest.fixture(scope="module")
def platform():
    """`bin/start` (tests/bin_start.py) with its own data folder, DAGs paused (the test unpauses what it triggers, as
    the trigger form does). No Slack or email reachable (the journey reads the delivery errors): no .env, Slack a
    channel without a connection, email to a port nobody listens on rather than bin/start's mail catcher
    (docs/local.md)."""
    root = session_dir() / "ui-platform"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    env = {"VYAPAR_ALERT_CHANNELS": "slack,email", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(free_port())}
    with bin_start(root, "ui/bin_start.log", **env) as started:
        info = dict(started)
        info["password"] = json.loads((root / "airflow_home" / "passwords.json").read_text())["admin"]
        token = requests.post(
            f"{info['base']}/auth/token", json={"username": "admin", "password": info["password"]}, timeout=10
        )
        token.raise_for_status()
        info["headers"] = {"Authorization": f"Bearer {token.json()['access_token']}"}
        info["store_url"] = f"sqlite:///{root / 'data' / 'alerts.sqlite'}"
        print(f"\nplatform up at {info['base']} after {info['ready_seconds']:.0f} s (log {info['log']})")
        yield info


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} not found: apt-get install -y chromium (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Shots:
    """Screenshots of each step: the session's folder and the stable, git-ignored test-artifacts/ui/."""

    def __init__(self) -> None:
        self.session = session_dir() / "ui"
        for folder in (self.session, UI_ARTIFACTS):
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.glob("*.png"):
                old.unlink()
        self.taken: list[Path] = []

    def __call__(self, page, name: str, *, full_page: bool = False, height: int | None = None) -> Path:
        path = self.session / f"{name}.png"
        if height:
            page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        try:
            page.screenshot(path=str(path), full_page=full_page)
        finally:
            if height:
                page.set_viewport_size(VIEWPORT)
        shutil.copy(path, UI_ARTIFACTS / path.name)
        self.taken.append(path)
        print(f"screenshot: {path}  (also {UI_ARTIFACTS / path.name})")
        return path


@pytest.fixture(scope="module")
def shots():
    shots = Shots()
    yield shots
    (UI_ARTIFACTS / "screenshots.txt").write_text("".join(f"{p}\n" for p in shots.taken))


@pytest.fixture(scope="module")
def context(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(60_000)  # 2 cores shared with the platform's dbt runs: pages can take a while
    yield context
    context.close()


@pytest.fixture(scope="module")
def page(context):
    return context.new_page()
