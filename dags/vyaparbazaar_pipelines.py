"""
## VyaparBazaar pipelines (Airflow DAGs built by one factory)

Every dag here comes from `include/vyapar/pipeline/schedules.yaml` — the one place that says which dbt layer or
business mart runs when. Cosmos renders each DAG's dbt selection as a task group, loaded from the compiled
dbt manifest, so parsing this file runs no dbt command and no database query.
"""

from include.vyapar.pipeline.dag_factory import build_all_dags
from include.vyapar.pipeline.parse_scope import dag_ids_to_build
from include.vyapar.runtime import patches

# Refuses to build on versions the patches were not verified on; then the patches the dbt tasks need
# (include/vyapar/runtime/patches/, docs/runtime.md).
patches.install_for_dags()
# A task process parses this file for its own DAG, a dag-processor's callback run for its callbacks' DAGs: build
# just those (the dag-processor's regular parse builds all).
globals().update(build_all_dags(only=dag_ids_to_build()))
