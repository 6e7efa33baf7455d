# Sourced by bin/setup, bin/start and bin/test: the embedded defaults of a local run. Every value can be
# overridden from the environment. Airflow reads AIRFLOW__SECTION__KEY variables; dbt reads VYAPAR_*.
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

# The compose stack's .env, for bin/start too (it sets VYAPAR_ENV_FILE; bin/setup and bin/test read none): every
# KEY=VALUE not already in the environment is exported, before the defaults below. As compose: the environment
# wins, `#` starts a comment, quotes around a value are removed, nothing is executed.
read_env_file() {
    local line key value
    while IFS= read -r line || [ -n "$line" ]; do
        line="${line%$'\r'}"
        [[ "$line" =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)[[:space:]]*=[[:space:]]*(.*)$ ]] || continue
        key="${BASH_REMATCH[2]}" value="${BASH_REMATCH[3]}"
        if [[ "$value" =~ ^\"(.*)\"[[:space:]]*(#.*)?$ || "$value" =~ ^\'(.*)\'[[:space:]]*(#.*)?$ ]]; then
            value="${BASH_REMATCH[1]}"
        else
            value="${value%%[[:space:]]#*}"
            value="${value%"${value##*[![:space:]]}"}"
        fi
        [ -n "${!key+set}" ] || export "$key=$value"
    done < "$1"
}
if [ -n "${VYAPAR_ENV_FILE:-}" ] && [ -f "$VYAPAR_ENV_FILE" ]; then
    read_env_file "$VYAPAR_ENV_FILE"
fi

export VENV="${VENV:-$REPO_ROOT/.venv}"
export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO_ROOT/airflow_home}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$REPO_ROOT/dags}"
export AIRFLOW__CORE__PLUGINS_FOLDER="${AIRFLOW__CORE__PLUGINS_FOLDER:-$REPO_ROOT/plugins}"
export AIRFLOW__CORE__LOAD_EXAMPLES="${AIRFLOW__CORE__LOAD_EXAMPLES:-False}"
export AIRFLOW__CORE__DEFAULT_TIMEZONE="${AIRFLOW__CORE__DEFAULT_TIMEZONE:-Asia/Kolkata}"
# The scheduler sleeps this long after a loop that found nothing to do (Airflow's default: 1 s). Each layer DAG run
# waits on it for its gate task, its end and the next run's start: at 0.25 s a one-task run's floor went 0.94 ->
# 0.58 s (bench/README.md); idle, the scheduler's CPU went 2.0 -> 6.0 s a minute.
export AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="${AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME:-0.25}"
export AIRFLOW__COSMOS__ENABLE_TELEMETRY=False
export DO_NOT_TRACK=1
export DBT_SEND_ANONYMOUS_USAGE_STATS=false
export VYAPAR_DATA_DIR="${VYAPAR_DATA_DIR:-$REPO_ROOT/data}"
# Cosmos keeps dbt's partial-parse cache per DAG; keep it with this environment's data (not a shared /tmp/cosmos),
# so another checkout or the tests' warehouse never invalidates it ("profile has changed").
export AIRFLOW__COSMOS__CACHE_DIR="${AIRFLOW__COSMOS__CACHE_DIR:-$VYAPAR_DATA_DIR/cosmos_cache}"
