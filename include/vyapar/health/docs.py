"""The project's dbt docs, generated into the data folder and served in the Airflow UI by Cosmos's plugin.

    python -m include.vyapar.health.docs          # dbt docs generate -> $VYAPAR_DATA_DIR/dbt_docs (if out of date)

`bin/start` runs it after the warehouse bootstrap (the catalog reads the warehouse) and points Cosmos at the folder
with `AIRFLOW__COSMOS__DBT_DOCS_PROJECTS` (see `cosmos_docs_config()`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from include.vyapar import settings
from include.vyapar.data.warehouse import run_dbt

SLUG = "vyaparbazaar"


def docs_dir() -> Path:
    return settings.DATA_DIR / "dbt_docs"


def cosmos_docs_config() -> str:
    """The value of `[cosmos] dbt_docs_projects`: one project, our docs folder, named for the menu."""
    return json.dumps({SLUG: {"dir": str(docs_dir()), "index": "index.html", "name": "dbt docs (VyaparBazaar)"}})


def up_to_date() -> bool:
    """The docs exist and are newer than the compiled manifest (re-generated after `bin/setup` re-parses dbt)."""
    index, catalog = docs_dir() / "index.html", docs_dir() / "catalog.json"
    if not (index.exists() and catalog.exists()):
        return False
    manifest = settings.DBT_MANIFEST_PATH
    return not manifest.exists() or catalog.stat().st_mtime >= manifest.stat().st_mtime


def generate(force: bool = False) -> int:
    if not force and up_to_date():
        return 0
    docs_dir().mkdir(parents=True, exist_ok=True)
    proc = run_dbt("docs", "generate", "--target-path", str(docs_dir()), "--quiet", check=False)
    return proc.returncode


if __name__ == "__main__":
    if sys.argv[1:] == ["--cosmos-config"]:
        print(cosmos_docs_config())
        sys.exit(0)
    sys.exit(generate(force="--force" in sys.argv[1:]))
