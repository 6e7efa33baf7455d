"""LocalExecutor whose task processes start with dbt already imported.

Airflow's LocalExecutor forks its worker processes from the scheduler when it starts, and each worker forks a
process per task. Importing dbt takes ~3 s of CPU (dbt builds its artifact classes at import), and a task that
runs dbt in process (Cosmos' dbt_runner invocation) paid it on every run: with one dbt build per layer DAG run,
that was most of the platform's cost over a plain `dbt build` at small data sizes (bench/README.md).
Here the scheduler imports dbt and the adapters once and runs one `dbt parse` (dbt builds its (de)serialisers on
first use), before the workers are forked: every task process inherits them (copy-on-write, after gc.freeze),
and the manifest that parse produced, which a task's first dbt invocation uses while the project is unchanged
(warm_manifest.py).

The platform's executor with LocalExecutor (bin/start, docker-compose.yaml): AIRFLOW__CORE__EXECUTOR=
include.vyapar.runtime.executor.WarmLocalExecutor. It refuses to start on unverified versions (patches.check); a
module that fails to preload is logged and the executor runs as a plain LocalExecutor: tasks import dbt themselves.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from airflow.executors.local_executor import LocalExecutor

from include.vyapar.runtime import patches, warm_manifest

log = logging.getLogger(__name__)

# What a dbt task imports before it can run dbt in process: dbt's CLI (its artifact classes), the adapters
# (registered per invocation, imported once) and Cosmos' operators. Not our own modules: they read settings
# from the environment when imported, and a task must see its own.
PRELOAD_MODULES = (
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "dbt.adapters.postgres",
    "cosmos.operators.local",
    "cosmos.operators.watcher",
    # Cosmos imports it after every dbt run (OpenLineage events from dbt's artifacts): ~0.5 s a task otherwise
    "openlineage.common.provider.dbt.local",
)


def preload(modules: tuple[str, ...] = PRELOAD_MODULES) -> dict[str, float]:
    """Import each module; seconds per module (a module that fails to import is logged and skipped)."""
    took: dict[str, float] = {}
    for name in modules:
        started = time.perf_counter()
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 -- a missing optional adapter must not stop the scheduler
            log.warning("WarmLocalExecutor: could not preload %s (%s: %s)", name, type(exc).__name__, exc)
            continue
        took[name] = time.perf_counter() - started
    return took


def warm_up_dbt() -> float | None:
    """One `dbt parse` of our project into a scratch folder, in this process. dbt generates the (de)serialisers of
    its node classes on first use: measured, a process's first partial parse took 2.2 s, its second 0.8 s. Done
    here once, every task process forked afterwards starts with them. Parse opens no database; DuckDB only (the
    Postgres profile needs the warehouse connection). Returns the seconds taken, None when skipped or failed."""
    ours = [m for m in sys.modules if m.startswith("include.vyapar")]
    try:
        from include.vyapar import settings
        from include.vyapar.data.warehouse import dbt_command

        if settings.IS_POSTGRES:
            return None
        from dbt.adapters.factory import reset_adapters
        from dbt.cli.main import dbtRunner

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="vyapar-dbt-warmup-") as tmp, settings.dbt_environment() as env:
            partial = settings.DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
            if partial.exists():
                shutil.copyfile(partial, Path(tmp) / partial.name)
            try:
                args = dbt_command(
                    "parse", "--target-path", tmp, "--log-path", tmp, "--quiet", "--no-static-parser", serialized=False
                )
                result = dbtRunner().invoke(args[1:])
                if result.success:
                    # the task processes' first dbt invocation starts from it when the project is unchanged
                    warm_manifest.keep(result.result, args[1:], env, settings.DBT_PROJECT_DIR)
            finally:
                reset_adapters()
        if not result.success:
            log.warning("WarmLocalExecutor: dbt parse failed while warming up (%s)", result.exception)
            return None
        return time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 -- warming up is an optimisation: never stop the scheduler
        log.warning("WarmLocalExecutor: dbt warm-up skipped (%s: %s)", type(exc).__name__, exc)
        return None
    finally:
        # Our modules read settings from the environment when imported: each task imports its own.
        for name in [m for m in sys.modules if m.startswith("include.vyapar") and m not in ours]:
            del sys.modules[name]


class WarmLocalExecutor(LocalExecutor):
    """LocalExecutor; its workers (and so every task process) are forked after dbt has been imported and warmed."""

    def start(self) -> None:
        patches.check()
        if self.is_mp_using_fork:
            took = preload()
            warm = warm_up_dbt()
            log.info(
                "WarmLocalExecutor: preloaded %s in %.1f s; dbt warm-up %s", ", ".join(took), sum(took.values()),
                f"{warm:.1f} s" if warm is not None else "skipped",
            )  # fmt: skip
        super().start()
