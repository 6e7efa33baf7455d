"""Airflow plugin: the platform's metrics for Prometheus at /vyapar-metrics/metrics in the API server, beside the
health view (include/vyapar/health/metrics.py). Not behind the UI's login: a scraper presents the bearer token
VYAPAR_METRICS_TOKEN, or scrapes from a network listed in VYAPAR_METRICS_ALLOW_FROM; anyone else gets 403.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from include.vyapar.health.metrics import URL_PREFIX, create_app


class VyaparMetricsPlugin(AirflowPlugin):
    name = "vyapar_metrics"
    fastapi_apps = [{"name": "vyapar_metrics", "app": create_app(), "url_prefix": URL_PREFIX}]
