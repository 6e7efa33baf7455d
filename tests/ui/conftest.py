"""Browser tests of the Airflow UI: the journey runs on the newcomer's `bin/start` platform (tests/bin_start.py),
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
def platform(paused_platform):
    """The newcomer's `bin/start` platform (tests/bin_start.py), once the first-start, delivery and watcher tests are
    done with it: DAGs paused (the journey unpauses what it triggers, as the trigger form does), Slack a local
    stand-in whose faults the journey programs, email to bin/start's mail catcher. The fault it leaves is cleared at
    the end: the Ctrl-C test that stops the platform comes last (tests/conftest.py, BIN_START_ORDER)."""
    info = dict(paused_platform)
    info["password"] = json.loads((info["root"] / "airflow_home" / "passwords.json").read_text())["admin"]
    print(f"\nplatform up at {info['base']} (log {info['log']})")
    yield info
    info["slack"].clear_faults()


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
