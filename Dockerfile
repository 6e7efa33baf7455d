# The VyaparBazaar platform image: the official Airflow image at the exact versions we pin, our locked
# requirements, the project, and the dbt manifest compiled at build time (DAG parsing never runs dbt).
# No secret enters any layer: they come at run time from .env (see .env.example and docker-compose.yaml).
FROM apache/airflow:3.3.2-python3.11

ENV PYTHONPATH=/opt/airflow \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    DO_NOT_TRACK=1 \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    VYAPAR_DATA_DIR=/opt/airflow/data \
    AIRFLOW__COSMOS__CACHE_DIR=/opt/airflow/data/cosmos_cache

# The base image's `airflow` user (uid 50000, group 0), numeric so any host resolves it; pip installs as it.
USER 50000
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 dbt/ /opt/airflow/dbt/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
# The runbooks every alert links to, served by the health plugin (/vyapar-health/runbooks).
COPY --chown=airflow:0 docs/runbooks.md /opt/airflow/docs/runbooks.md

# Compile the manifest Cosmos renders from; create the mount points of the named volumes owned by
# airflow:0 and group-writable, so any AIRFLOW_UID in group 0 can write them (a new named volume takes
# the ownership of the image directory it is mounted on).
RUN python -m include.vyapar.pipeline.manifest \
    && mkdir -p /opt/airflow/data/warehouse /opt/airflow/data/landing /opt/airflow/data/cosmos_cache \
        /opt/airflow/auth /opt/airflow/logs \
    && chmod -R g+rwX /opt/airflow/data /opt/airflow/auth /opt/airflow/logs /opt/airflow/dbt
