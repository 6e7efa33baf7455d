{#- A folder's custom schema is used verbatim (staging, intermediate, core, marts, ml), not prefixed with
    the target schema, so every environment sees the same layer names. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema | trim }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
