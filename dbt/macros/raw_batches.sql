{#- Source freshness: the latest arrival of a raw table, from the extractor's batch ledger (one row per table per
    batch, written even when the table brought no rows). DuckDB reads the ledger's Parquet files in place;
    Postgres reads raw._batches, the copy include/vyapar/data/pg_raw.py loads with every batch. -#}
{% macro raw_batch_loaded_at(table_name) -%}
    {{ return(adapter.dispatch('raw_batch_loaded_at', 'vyaparbazaar')(table_name)) }}
{%- endmacro %}

{% macro default__raw_batch_loaded_at(table_name) -%}
    select max(_loaded_at) from raw._batches where table_name = '{{ table_name }}'
{%- endmacro %}

{% macro duckdb__raw_batch_loaded_at(table_name) -%}
    select max(_loaded_at)
    from read_parquet('{{ env_var('VYAPAR_LANDING_DIR', '../data/landing') }}/_batches/*.parquet')
    where table_name = '{{ table_name }}'
{%- endmacro %}
