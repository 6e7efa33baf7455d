"""Targeted rebuilds: validate a user's dbt selector and resolve it to the dbt tasks a run should execute."""

from __future__ import annotations

import json
import re
import shutil
import string
import subprocess
import tempfile
from pathlib import Path

from include.vyapar import settings
from include.vyapar.data.warehouse import dbt_command

# dbt selector syntax only: names, paths, methods (tag:, path:, source:), graph operators (+ @ *), unions
# (space), intersections (comma). No quotes, semicolons, $ or backticks: the value is never given to a shell.
# No token may start with "-": dbt would read it as an option (--target-path, --record-timing-info write files).
_PUNCTUATION = "_.:+*@,/"
SELECTOR_CHARS = frozenset(string.ascii_letters + string.digits + _PUNCTUATION + "- ")
_TOKEN = rf"[A-Za-z0-9{_PUNCTUATION}][A-Za-z0-9{_PUNCTUATION}-]*"
# The same rule as a JSON-schema pattern, for the trigger form and the API: it must mean the same in Python's `re`
# and in ECMAScript. `$` alone would accept a trailing newline in Python; `(?![\s\S])` means "end of input" in both.
SELECTOR_PATTERN = rf"^ *(?:{_TOKEN}(?: +{_TOKEN})*)? *$(?![\s\S])"
SELECTOR_MAX_LENGTH = 400
_SELECTOR_RE = re.compile(SELECTOR_PATTERN)


class InvalidSelectorError(ValueError):
    """The `select` param is not a dbt selector we accept."""


def validate_selector(selector: str | None) -> list[str]:
    """Return the selector split into dbt --select arguments; [] means "everything in this DAG"."""
    if selector is None:
        return []
    if not isinstance(selector, str):
        raise InvalidSelectorError(f"select must be a string, got {type(selector).__name__}")
    if len(selector) > SELECTOR_MAX_LENGTH:
        raise InvalidSelectorError(f"select is {len(selector)} characters; the limit is {SELECTOR_MAX_LENGTH}")
    bad = sorted({c for c in selector if c not in SELECTOR_CHARS})
    if bad:
        shown = ", ".join(repr(c) for c in bad)  # repr: a newline shows as '\n', not as an empty-looking ''
        raise InvalidSelectorError(f"select {selector!r} contains characters not allowed in a dbt selector: {shown}")
    options = [token for token in selector.split() if token.startswith("-")]
    if options:
        raise InvalidSelectorError(
            f"select {selector!r} contains {', '.join(map(repr, options))}: a selector is dbt selection syntax only; "
            "a word starting with '-' would be read by dbt as an option"
        )
    if not _SELECTOR_RE.match(selector):  # the form's pattern: the checks above should already have said why
        raise InvalidSelectorError(f"select {selector!r} is not a dbt selector")
    return selector.split()


def cosmos_name(node: dict) -> str:
    """The name Cosmos passes to `dbt --select` for a node's task."""
    if node["resource_type"] == "source":
        return f"source:{node['source_name']}.{node['name']}"
    return node["name"]


def resolve_selector(selector_args: list[str]) -> list[str]:
    """Ask dbt which models/sources the selector matches (dbt ls: parses only, opens no database).

    From the partial parse written with the manifest (bin/setup, the image build), as Cosmos starts each dbt task:
    measured twice in a row on this 2-core machine, 4.0-4.7 s against 7.6-8.0 s with a full parse."""
    with tempfile.TemporaryDirectory(prefix="vyapar-dbt-ls-") as tmp:
        partial = settings.DBT_MANIFEST_PATH.parent / "partial_parse.msgpack"
        if partial.exists():
            shutil.copyfile(partial, Path(tmp) / partial.name)
        cmd = dbt_command(
            "ls", "--quiet", "--target-path", tmp, "--log-path", tmp,
            "--resource-type", "model", "--resource-type", "source", "--resource-type", "seed",
            "--resource-type", "snapshot",
            "--output", "json", "--output-keys", "resource_type", "--output-keys", "name",
            "--output-keys", "source_name",
            "--select", *selector_args, serialized=False,
        )  # fmt: skip
        env = settings.subprocess_env(**settings.dbt_cli_env(connect=False))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if proc.returncode != 0:
        raise InvalidSelectorError(
            f"dbt could not resolve select {' '.join(selector_args)!r}:\n{proc.stdout}{proc.stderr}"
        )
    names = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            names.append(cosmos_name(json.loads(line)))
    return sorted(set(names))


def task_selects(task) -> set[str]:
    """The dbt names a Cosmos task was built to run (`fqn:pkg.folder.model` is reduced to `model`)."""
    select = getattr(task, "select", None) or getattr(task, "models", None) or []
    if isinstance(select, str):
        select = select.split()
    return {s.rsplit(".", 1)[-1] if s.startswith("fqn:") else s for s in select}
