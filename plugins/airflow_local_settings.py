"""Airflow imports this module (plugins/ is on its path) at the start of every process: it refuses to start on
versions our patches of private Airflow/Cosmos/dbt code were not verified on, then installs the ones this process
needs (include/vyapar/runtime/patches/, docs/runtime.md). It defines no settings and no cluster policies."""

import sys

__all__: list[str] = []

try:
    from include.vyapar.runtime import patches
except ModuleNotFoundError as exc:
    if exc.name not in ("include", "include.vyapar", "include.vyapar.runtime"):
        raise
    # the repository is not on the path (a process outside this deployment): nothing of ours runs in it
else:
    patches.install_for_process(sys.argv)
