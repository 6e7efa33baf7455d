"""
## VyaparBazaar pipelines (Airflow DAGs built by one factory)

Every dag here comes from `include/vyapar/schedules.yaml` — the one place that says which dbt layer or
business mart runs when. Cosmos renders each DAG's dbt selection as a task group, loaded from the compiled
dbt manifest, so parsing this file runs no dbt command and no database query.
"""

from airflow.sdk import get_parsing_context

from include.vyapar.dag_factory import build_all_dags

# A task process parses this file only for its own DAG: build just that one (the dag-processor builds all).
globals().update(build_all_dags(only=get_parsing_context().dag_id))
