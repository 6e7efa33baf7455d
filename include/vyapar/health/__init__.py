"""The pipeline-health view: what the on-call engineer opens first, inside the Airflow UI.

`snapshot.collect()` gathers the figures from the project's own stores (freshness as the watcher computes it,
dbt durations against their baselines, alerts and the delivery outbox from the alert store) and Airflow's
metadata; `render.page()` turns them into one HTML page with inline SVG charts; `app.create_app()` serves it
behind Airflow's login (plugins/vyapar_health_plugin.py mounts it at /vyapar-health), with `runbooks.page()`
(docs/runbooks.md rendered: the link in every alert) beside it.
"""
