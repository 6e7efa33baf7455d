"""Airflow imports this module (plugins/ is on its path) at the start of every process: it installs our fixes for
known Airflow bugs, each only in the process it concerns (include/vyapar/runtime/airflow_fixes.py). It defines no
settings and no cluster policies."""

__all__: list[str] = []

try:
    from include.vyapar.runtime.airflow_fixes import install
except ImportError:  # the repository is not on the path (a process outside this deployment): nothing to fix
    pass
else:
    install()
