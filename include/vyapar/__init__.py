"""VyaparBazaar analytics platform: raw data, dbt on DuckDB via Cosmos, and alerting."""
