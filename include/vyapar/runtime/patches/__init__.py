"""Every use of a non-public name of Airflow, Cosmos, dbt or dbt-duckdb, and the guard on the versions they fit.

Each module here works around one upstream bug or gap (PATCHES names the issue) and was verified on the exact
versions in VERIFIED. `check()` refuses to start a process on other versions. Importing this package (or any module
in it) patches nothing: `install_for_process()` (plugins/airflow_local_settings.py, every Airflow process) and
`install_for_dags()` (the DAG file) apply them. docs/runtime.md lists them; tests/runtime/test_patches.py shows
each bug, so a patch can go once upstream fixes it.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from importlib import metadata

# The versions every patch below was verified on. Upgrading one: run tests/runtime/ (each patch's test shows
# whether the bug is still there and the patch still fits), then change the version here.
VERIFIED = {
    "apache-airflow-core": "3.3.2",
    "apache-airflow-task-sdk": "1.3.2",
    "apache-airflow-providers-smtp": "3.2.0",
    "astronomer-cosmos": "1.15.1",
    "dbt-core": "1.11.16",
    "dbt-duckdb": "1.11.1",
}


@dataclass(frozen=True)
class Patch:
    module: str  # include.vyapar.runtime.patches.<module>
    upstream: str  # the upstream issue it works around, or why there is none
    packages: tuple[str, ...]  # the distributions whose private names it uses (versions in VERIFIED)


PATCHES = (
    Patch("dag_processor_parse_time", "https://github.com/apache/airflow/issues/73432", ("apache-airflow-core",)),
    Patch("triggerer_wake", "no upstream issue filed: the trigger runner hands fired events on only after its 1 s "
          "sleep", ("apache-airflow-core",)),  # fmt: skip
    Patch("success_task_callbacks", "no upstream issue filed: the dag-processor parses a DAG file for a task's "
          "success callback request that it then drops (run only for failures)", ("apache-airflow-core",)),  # fmt: skip
    Patch("callback_parse_scope", "no upstream issue filed: a dag-processor callback parse has no parsing context "
          "(apache/airflow#73432 is its neighbour)", ("apache-airflow-core",)),  # fmt: skip
    Patch("cosmos_manifest_cache", "https://github.com/astronomer/astronomer-cosmos/issues/2294",
          ("astronomer-cosmos",)),  # fmt: skip
    Patch("dbt_runner_in_process", "https://github.com/duckdb/dbt-duckdb/issues/616, "
          "https://github.com/astronomer/astronomer-cosmos/issues/2777",
          ("astronomer-cosmos", "dbt-core", "dbt-duckdb")),  # fmt: skip
    Patch("status_board", "https://github.com/astronomer/astronomer-cosmos/issues/2736",
          ("astronomer-cosmos", "apache-airflow-task-sdk")),  # fmt: skip
    Patch("watcher_trigger", "https://github.com/astronomer/astronomer-cosmos/issues/2811",
          ("astronomer-cosmos", "apache-airflow-core", "apache-airflow-task-sdk")),  # fmt: skip
    Patch("xcom_not_found_log", "https://github.com/apache/airflow/issues/73175", ("apache-airflow-task-sdk",)),
    Patch("smtp_plain_text", "no upstream issue filed: SmtpHook sends an HTML email without a text/plain part",
          ("apache-airflow-providers-smtp",)),  # fmt: skip
)


class UnverifiedVersionsError(RuntimeError):
    """Installed versions differ from those the patches were verified on: the process must not start."""


@functools.cache  # once per process (and inherited by the processes it forks: the DAG file checks every parse)
def _installed(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def mismatches(patches: tuple[Patch, ...] = PATCHES) -> list[str]:
    """One line per patch whose packages are installed in other versions than VERIFIED."""
    lines = []
    for patch in patches:
        differ = [(p, _installed(p), VERIFIED[p]) for p in patch.packages if _installed(p) != VERIFIED[p]]
        if differ:
            found = "; ".join(f"{p} installed {got or 'not installed'}, verified {want}" for p, got, want in differ)
            lines.append(f"  - patch {patch.module} ({patch.upstream}): {found}")
    return lines


def check(patches: tuple[Patch, ...] = PATCHES) -> None:
    """Raise UnverifiedVersionsError, naming each patch and its versions (installed vs verified), on a mismatch."""
    lines = mismatches(patches)
    if lines:
        raise UnverifiedVersionsError(
            "VyaparBazaar refuses to start: these patches use private code of packages installed in versions they "
            "were not verified on:\n" + "\n".join(lines) + "\nInstall the verified versions (requirements.txt), or "
            "check each patch against the new version (tests/runtime/test_patches.py shows the bug it works "
            "around; delete the patch once upstream fixed it) and update VERIFIED in "
            "include/vyapar/runtime/patches/__init__.py."
        )


def _module(name: str):
    return importlib.import_module(f"{__name__}.{name}")


def _install(name: str) -> None:
    """Apply one patch, unless the bench is measuring the platform without it (VYAPAR_BENCH_PATCHES_OFF, a comma
    list of patch modules: each patch's gain in docs/runtime.md is measured that way)."""
    from include.vyapar import settings

    if name not in settings.setting("VYAPAR_BENCH_PATCHES_OFF").split(","):
        _module(name).install()


def install_for_process(argv: list[str]) -> None:
    """At the start of every Airflow process (airflow_local_settings): check, then the fixes this process needs."""
    check()
    command = argv[1:2]
    if "dag-processor" in command:
        _install("dag_processor_parse_time")
        _install("success_task_callbacks")
    if "triggerer" in command:
        _install("triggerer_wake")
        _install("xcom_not_found_log")


def install_for_dags() -> None:
    """In the DAG file, before the DAGs are built (every parse, every task process): check, then the patches
    building and running the dbt tasks need. Idempotent."""
    check()
    _install("cosmos_manifest_cache")
    _install("dbt_runner_in_process")
