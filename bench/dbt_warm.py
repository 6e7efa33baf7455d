"""`python -m bench.dbt_warm <dbt args>`: one dbt invocation in process, timed after dbt is imported.

How the platform runs dbt (WarmLocalExecutor + dbt_runner): its task processes start with dbt imported and warmed
(the executor's one `dbt parse` before it forks: dbt builds its (de)serialisers on first use), so an hourly run
pays dbt's work, not its ~3 s import nor its first-use set-up, and starts from the manifest the warm-up parsed when
the project is unchanged since (include/vyapar/runtime/warm_manifest.py), as a task's first invocation does. Prints one
JSON line:
{"seconds", "warm_up_seconds", "success"}."""

from __future__ import annotations

import json
import os
import sys
import time


def main(argv: list[str]) -> int:
    import dbt.adapters.duckdb  # noqa: F401  -- imported by the warm executor too
    from dbt.cli.main import dbtRunner

    from include.vyapar import settings
    from include.vyapar.data.warehouse import dbt_command
    from include.vyapar.runtime.executor import warm_up_dbt
    from include.vyapar.runtime.patches import dbt_runner_in_process

    warm_up_seconds = warm_up_dbt()  # what WarmLocalExecutor does before forking the task processes
    command = dbt_command(*argv, serialized=False)
    started = time.perf_counter()
    # as a task's dbt_runner invocation does (patches/dbt_runner_in_process.py): the warm manifest if it holds, else dbt parses
    result = dbt_runner_in_process.invoke(command, settings.dbt_env(), os.getcwd(), None)  # Cosmos' env: dbt_env()
    if result is None:
        result = dbtRunner().invoke(command[1:])
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "warm_up_seconds": warm_up_seconds, "success": bool(result.success)}),
          flush=True)  # fmt: skip
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
