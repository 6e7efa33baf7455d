"""Deployment: the compose stack's init, its secret preflight, and what Airflow must hold (pools)."""
