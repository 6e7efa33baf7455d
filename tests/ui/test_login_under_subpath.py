"""Airflow served under a sub-path (`AIRFLOW__API__BASE_URL=http://host/airflow/`): the dbt docs, the health view
and the runbooks still need the UI's login.

Airflow's own API app (`airflow.api_fastapi.app.create_app`, what `airflow api-server` serves: the auth manager,
Cosmos' plugin and ours) is built in a fresh interpreter, since Airflow reads `[api] base_url` at import, and
called in process (Starlette's TestClient); no platform is started.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PASSWORD = "subpath-test-password"
PATHS = {
    "docs_manifest": "/cosmos/vyaparbazaar/manifest.json",
    "docs_index": "/cosmos/vyaparbazaar/dbt_docs_index.html",
    "health": "/vyapar-health/api/health",
    "runbooks": "/vyapar-health/runbooks",
}


def probe() -> None:
    """Run in the child: each path with the root path (as a browser asks) and without it (behind a proxy that
    strips it), anonymously (API client and browser) and with a token; prints what came back as JSON."""
    from airflow import settings
    from airflow.api_fastapi.app import create_app
    from airflow.models.revoked_token import RevokedToken
    from fastapi.testclient import TestClient

    # The one metadata table a login check reads (is the token revoked?): no full `airflow db migrate` needed.
    RevokedToken.__table__.create(settings.engine, checkfirst=True)
    client = TestClient(create_app(), base_url="http://host", follow_redirects=False)
    token = client.post("/airflow/auth/token", json={"username": "admin", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    results = {}
    for name, path in PATHS.items():
        for prefix in ("/airflow", ""):
            anonymous = client.get(prefix + path)
            browser = client.get(prefix + path, headers={"Accept": "text/html"})
            results[f"{prefix}{path}"] = {
                "anonymous": anonymous.status_code,
                "browser": browser.status_code,
                "browser_location": browser.headers.get("location", ""),
                "with_login": None if name == "health" else client.get(prefix + path, headers=bearer).status_code,
            }
    print("PROBE " + json.dumps(results))


@pytest.fixture(scope="module")
def under_subpath(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("subpath")
    docs = root / "dbt_docs"
    docs.mkdir()
    (docs / "manifest.json").write_text('{"nodes": {}}')
    (docs / "catalog.json").write_text('{"nodes": {}}')
    (docs / "index.html").write_text("<html>dbt docs</html>")
    (root / "passwords.json").write_text(json.dumps({"admin": PASSWORD}))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(root / "airflow_home"),
        "AIRFLOW__API__BASE_URL": "http://host/airflow/",
        "AIRFLOW__API_AUTH__JWT_SECRET": "subpath-test-" + "s" * 64,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
        "AIRFLOW__COSMOS__DBT_DOCS_PROJECTS": json.dumps(
            {"vyaparbazaar": {"dir": str(docs), "index": "index.html", "name": "dbt docs (VyaparBazaar)"}}
        ),
    }
    proc = subprocess.run(
        [sys.executable, "-c", "from tests.ui.test_login_under_subpath import probe; probe()"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    line = next((x for x in proc.stdout.splitlines() if x.startswith("PROBE ")), None)
    assert proc.returncode == 0 and line, (
        f"probe failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    )
    return json.loads(line.removeprefix("PROBE "))


@pytest.mark.parametrize("name", PATHS)
@pytest.mark.parametrize("prefix", ["/airflow", ""], ids=["as_browsers_ask", "behind_a_prefix_stripping_proxy"])
def test_nothing_is_served_without_the_ui_login_under_a_subpath(under_subpath, name, prefix):
    path = prefix + PATHS[name]
    result = under_subpath[path]
    if not prefix:  # served (the dbt docs: Starlette routes either form) or not found, never without the login
        assert result["anonymous"] in (401, 404) and result["browser"] in (303, 404), (path, result)
        return
    assert result["anonymous"] == 401, (path, result)
    # A browser is sent to the login page, under the sub-path, and back to what it asked for.
    if name == "health":  # the JSON API answers 401 to everyone
        return
    assert result["browser"] == 303, (path, result)
    location = result["browser_location"].removeprefix("http://host")
    assert location.startswith("/airflow/auth/login") and "next=%2Fairflow%2F" in location, result
    if result["with_login"] is not None:
        assert result["with_login"] == 200, (path, result)
