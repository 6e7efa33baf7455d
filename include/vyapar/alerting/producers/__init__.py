"""What notices a problem and raises an alert (or a notice) through `include.vyapar.alerting.raise_alert`: the
dbt tasks' callbacks and their watchdog (failures, failing tests, slow models and tests, resources), the freshness
watch, the reconciler of runs no callback saw, the daily digest and the weekly report. Delivery is the package
above's: one outbox, one flusher (include/vyapar/alerting/delivery.py)."""
