"""Airflow-facing pieces: operators, notifier, links, task adapters. Imported by dags/ and plugins/."""
