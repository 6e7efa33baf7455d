"""`python -m bench.dbt_warm <dbt args>`: one dbt invocation in process, timed after dbt is imported.

How the platform runs dbt (WarmLocalExecutor + dbt_runner): its task processes start with dbt imported and warmed
(the executor's one `dbt parse` before it forks: dbt builds its (de)serialisers on first use), so an hourly run
pays dbt's partial parse and work, not its ~3 s import nor its first-use set-up. Prints one JSON line:
{"seconds", "warm_up_seconds", "success"}."""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    import dbt.adapters.duckdb  # noqa: F401  -- imported by the warm executor too
    from dbt.cli.main import dbtRunner

    from include.vyapar.executor import warm_up_dbt
    from include.vyapar.warehouse import dbt_command

    warm_up_seconds = warm_up_dbt()  # what WarmLocalExecutor does before forking the task processes
    args = dbt_command(*argv, serialized=False)[1:]
    started = time.perf_counter()
    result = dbtRunner().invoke(args)
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "warm_up_seconds": warm_up_seconds, "success": bool(result.success)}),
          flush=True)  # fmt: skip
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
