"""dbt's parsed manifest, kept by the warm executor for the task processes it forks.

Every dbt invocation starts by loading its manifest: with partial parsing (as Cosmos runs it) dbt decodes
partial_parse.msgpack, checks the project's files against it and writes manifest.json again: measured at 100k
events, a 14-node layer build took 1.77 s that way and 1.31 s from a manifest already in memory (dbt's programmatic
`dbtRunner(manifest=...)`). WarmLocalExecutor parses the project once before it forks its workers (executor.py)
and keeps the result here; a task's first dbt invocation (Cosmos' dbt_runner, dbt_in_process.py) takes it when
nothing dbt parses has changed since:

- the project's files (what Cosmos links into a task's copy of the project: all but target/, logs/, profiles.yml),
  by path, size and modification time, and the profiles.yml the invocation reads, by content;
- the environment variables the project and profile read (`env_var('...')`), by value;
- the arguments that change a parse (`--vars`, `--profile`, `--target`, `--no-partial-parse`).

Anything else (a deploy that changed a model, other vars) and dbt parses as usual. Taken once per process: dbt
annotates the manifest's nodes while it runs (compiled SQL), so a second invocation parses again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Not part of a parse; Cosmos does not link them into a task's copy of the project either.
_NOT_PARSED = {"target", "logs", "package-lock.yml", "profiles.yml", "__pycache__", ".user.yml"}
_PARSE_ARGS = ("--vars", "--profile", "--target", "-t", "--no-partial-parse", "--partial-parse")
_ENV_VAR = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")


@dataclass(frozen=True)
class Fingerprint:
    files: tuple[tuple[str, int, int], ...]
    profiles: str
    env: tuple[tuple[str, str | None], ...]
    args: tuple[tuple[str, str | None], ...]


def _option(args: list[str], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name:
            nxt = args[i + 1] if i + 1 < len(args) else ""
            return "" if nxt.startswith("-") or not nxt else nxt
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def fingerprint(args: list[str], env: dict[str, str], cwd: str | Path) -> Fingerprint:
    """What a parse of the project with these dbt arguments (after the subcommand) would read."""
    project = Path(_option(args, "--project-dir") or cwd)
    files, names = [], set()
    for dirpath, dirnames, filenames in os.walk(project, followlinks=True):
        if Path(dirpath) == project:
            dirnames[:] = [d for d in dirnames if d not in _NOT_PARSED]
            filenames = [f for f in filenames if f not in _NOT_PARSED]
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            path = Path(dirpath) / name
            st = path.stat()
            files.append((str(path.relative_to(project)), st.st_size, st.st_mtime_ns))
            if path.suffix in (".sql", ".yml", ".yaml", ".md", ".csv", ".py"):
                names.update(_ENV_VAR.findall(path.read_text(errors="replace")))
    profiles_dir = Path(_option(args, "--profiles-dir") or env.get("DBT_PROFILES_DIR") or project)
    profiles = profiles_dir / "profiles.yml"
    text = profiles.read_text() if profiles.is_file() else ""
    names.update(_ENV_VAR.findall(text))
    return Fingerprint(
        files=tuple(sorted(files)),
        profiles=hashlib.sha256(text.encode()).hexdigest(),
        env=tuple(sorted((name, env.get(name)) for name in names)),
        args=tuple((name, _option(args, name)) for name in _PARSE_ARGS),
    )


def _changes(then: Fingerprint, now: Fingerprint) -> list[str]:
    """What differs, by name only (an environment variable's value may be a secret)."""
    changes = []
    files = sorted({f[0] for f in set(then.files) ^ set(now.files)})
    if files:
        changes.append(f"files {', '.join(files[:5])}{' ...' if len(files) > 5 else ''}")
    if then.profiles != now.profiles:
        changes.append("profiles.yml")
    env = sorted({name for name, _ in set(then.env) ^ set(now.env)})
    if env:
        changes.append(f"environment variables {', '.join(env)}")
    args = sorted({name for name, _ in set(then.args) ^ set(now.args)})
    if args:
        changes.append(f"arguments {', '.join(args)}")
    return changes


_kept: tuple[Any, Fingerprint] | None = None


def keep(manifest: Any, args: list[str], env: dict[str, str], cwd: str | Path) -> None:
    """Keep a manifest parsed with these arguments, environment and working directory."""
    global _kept
    _kept = (manifest, fingerprint(args, env, cwd))


def take(args: list[str], env: dict[str, str], cwd: str | Path) -> Any | None:
    """The kept manifest when a parse with these arguments would read exactly what it was parsed from, else None.
    Once per process: whatever the answer, the manifest is not kept any more."""
    global _kept
    kept, _kept = _kept, None
    if kept is None:
        return None
    manifest, then = kept
    try:
        now = fingerprint(args, env, cwd)
    except OSError as exc:
        log.info("dbt will parse: could not read the project (%s)", exc)
        return None
    if now != then:
        log.info("dbt will parse: changed since the executor parsed the project: %s", "; ".join(_changes(then, now)))
        return None
    log.info("dbt: using the manifest the executor parsed (the project is unchanged since)")
    return manifest
