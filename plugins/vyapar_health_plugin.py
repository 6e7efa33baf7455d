"""Airflow plugin: the VyaparBazaar pipeline-health view, inside the Airflow UI.

The FastAPI app (include/vyapar/health/app.py) is mounted in the API server at /vyapar-health; the external view
puts "Pipeline health" at the top level of the UI's navigation and shows the page inside the UI (at
/plugin/pipeline-health). Same login as the UI; the alert runbooks are served beside it (/vyapar-health/runbooks,
the link in every alert). The dbt docs are served by Cosmos's own plugin
(`[cosmos] dbt_docs_projects`, set by bin/start) under Browse; this plugin puts them behind the UI's login.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.vyapar.health.app import URL_PREFIX, RequireLogin, create_app

ICON = (
    "data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24' fill='none' "
    "stroke='%23ef8f00' stroke-width='2.2' stroke-linecap='round' stroke-linejoin='round'>"
    "<polyline points='2 12 6 12 9 4 15 20 18 12 22 12'/></svg>"
)


class VyaparHealthPlugin(AirflowPlugin):
    name = "vyapar_health"
    fastapi_apps = [{"name": "vyapar_health", "app": create_app(), "url_prefix": URL_PREFIX}]
    # The dbt docs (Cosmos's plugin, /cosmos/...) behind the same login as the UI.
    fastapi_root_middlewares = [{"name": "vyapar_require_login", "middleware": RequireLogin}]
    external_views = [
        {
            "name": "Pipeline health",
            # Relative (no leading slash): resolved against the UI's base URL, right behind a proxy too.
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "pipeline-health",
            "destination": "nav",
            "nav_top_level": True,
            "icon": ICON,
        }
    ]
