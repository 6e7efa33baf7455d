"""The sources DAG's landing step: drops the hour's raw batch where the dbt sources read it (DuckDB in place; on
the Postgres target also loaded into the warehouse's `raw` schema, re-synced after the contract check quarantines).
"""

from __future__ import annotations

from datetime import UTC, datetime

from include.vyapar import settings


def land_hourly_batch() -> dict:
    from include.vyapar.data.datagen import land_next_batch, table_row_counts

    landing = settings.LANDING_DIR
    if not (landing / "_state.json").exists():
        raise FileNotFoundError(
            f"landing folder {landing} has no initial load; run `bin/setup` or "
            "`python -m include.vyapar.data.datagen init` first"
        )
    if not settings.SIMULATE_ARRIVALS:
        counts = table_row_counts(landing)
        print(f"VYAPAR_SIMULATE_ARRIVALS is off: not generating; rows landed so far: {counts}")
        _load_into_warehouse(None)  # whatever the extractor dropped that the warehouse does not hold yet
        return {"simulated": False, "rows": counts}
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    result = land_next_batch(landing, at=now)
    print(f"landed batch {result.get('batch_id')} at {now.isoformat()}Z: {result}")
    # All batches, not only this one: a batch an earlier failed run landed but did not load is caught up.
    _load_into_warehouse(None)
    return result


def _load_into_warehouse(batches: list[str] | None) -> None:
    """Postgres target: load landed batches into schema raw (new/changed files; removed ones dropped)."""
    from include.vyapar.data.pg_raw import sync_if_postgres

    sync_if_postgres(batches)


def check_raw_batches(batches: list[str] | None = None) -> list[str]:
    """Contract check of the landed files (all, or the given batches, and any file put back from quarantine);
    bad files are quarantined, put-back files re-stamped so the next incremental run reads them."""
    from include.vyapar.data.landing_checks import check_landing

    synced = batches
    try:
        problems = check_landing(settings.LANDING_DIR, batches=batches)
        if any(p.severity == "notice" for p in problems):
            synced = None  # a put-back file of an earlier batch was rewritten: load it too
        return [str(p) for p in problems if p.severity != "info"]
    except Exception:
        synced = None  # what was quarantined may be an earlier batch's put-back
        raise
    finally:
        # a quarantined file leaves the folder: its rows leave the Postgres raw schema too (no-op on DuckDB)
        _load_into_warehouse(synced)
