"""Airflow-facing pieces: operators, notifier, links, task adapters (for dags/ and plugins/)."""
