"""Browser tests of the Airflow UI: one platform started with `bin/start` (own data folder, free port) per module,
driven by Playwright through Debian's Chromium (`apt-get install -y chromium`; Playwright cannot download browsers
here). Screenshots go to `<test session dir>/ui/` and to `test-artifacts/ui/` (git-ignored), one per step.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import ARTIFACTS, REPO_ROOT, session_dir

CHROMIUM = os.environ.get("VYAPAR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-default-apps", "--disable-sync",
]  # fmt: skip
VIEWPORT = {"width": 1440, "height": 900}
UI_ARTIFACTS = ARTIFACTS / "ui"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """`bin/start` on a free port with its own data folder and Airflow home; DAGs start paused (the test unpauses
    what it triggers, as the trigger form does)."""
    root = session_dir() / "ui-platform"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    port = _free_port()
    env = {
        **os.environ,
        "VYAPAR_DATA_DIR": str(root / "data"),
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW_PORT": str(port),
        "VYAPAR_SCALE": "0.05",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        # No Slack or email reachable (the journey reads the delivery errors): no .env, Slack a channel without a
        # connection, email to a port nobody listens on rather than bin/start's mail catcher (docs/local.md).
        "VYAPAR_ENV_FILE": str(root / ".env"),
        "VYAPAR_ALERT_CHANNELS": "slack,email",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(_free_port()),
    }
    # The test session's own locations (tests/conftest.py) must not leak into the platform: it derives its own.
    for var in ("VYAPAR_LANDING_DIR", "VYAPAR_DUCKDB_PATH", "VYAPAR_WAREHOUSE_LOCK", "VYAPAR_ALERT_STORE_URL",
                "AIRFLOW__COSMOS__CACHE_DIR", "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS"):  # fmt: skip
        env.pop(var, None)
    log = root / "start.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([str(REPO_ROOT / "bin" / "start")], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://localhost:{port}"
    info = {"base": base, "root": root, "log": log, "proc": proc, "port": port}
    try:
        wait_for(lambda: requests.get(f"{base}/api/v2/monitor/health", timeout=5).ok, 900, "a healthy API", info)
        info["ready_seconds"] = time.monotonic() - started
        info["password"] = json.loads((root / "airflow_home" / "passwords.json").read_text())["admin"]
        token = requests.post(
            f"{base}/auth/token", json={"username": "admin", "password": info["password"]}, timeout=10
        )
        token.raise_for_status()
        info["headers"] = {"Authorization": f"Bearer {token.json()['access_token']}"}
        info["store_url"] = f"sqlite:///{root / 'data' / 'alerts.sqlite'}"
        print(f"\nplatform up at {base} after {info['ready_seconds']:.0f} s (log {log})")
        yield info
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        UI_ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, UI_ARTIFACTS / "bin_start.log")


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
