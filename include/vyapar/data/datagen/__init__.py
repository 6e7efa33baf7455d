"""Deterministic, vectorised raw-data generator for VyaparBazaar: lands Parquet batches like an extractor would.

`python -m include.vyapar.data.datagen --help` for the CLI; the functions below are what Airflow tasks and tests call.
"""

from include.vyapar.data.datagen.batches import generate_initial, land_next_batch
from include.vyapar.data.datagen.landing import LandingNotEmptyError, table_row_counts
from include.vyapar.data.datagen.schema import TABLE_SCHEMAS, TABLES

__all__ = ["TABLES", "TABLE_SCHEMAS", "LandingNotEmptyError", "generate_initial", "land_next_batch", "table_row_counts"]
