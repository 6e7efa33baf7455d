# Minimal image for now (the compose stack is issue 4): the official Airflow image at our pinned versions,
# our locked requirements, the project, and the dbt manifest compiled at build time (no dbt at DAG parse).
FROM apache/airflow:3.3.2-python3.11

ENV PYTHONPATH=/opt/airflow \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    AIRFLOW__COSMOS__ENABLE_TELEMETRY=False \
    DO_NOT_TRACK=1 \
    VYAPAR_DATA_DIR=/opt/airflow/data

COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 dbt/ /opt/airflow/dbt/
COPY --chown=airflow:0 include/ /opt/airflow/include/
COPY --chown=airflow:0 plugins/ /opt/airflow/plugins/
RUN python -m include.vyapar.manifest

USER airflow
