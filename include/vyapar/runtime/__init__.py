"""How dbt runs inside Airflow: the executor, dbt in the task's process, the watcher pieces and the patches."""
