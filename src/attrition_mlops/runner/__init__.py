"""Running the jobs: the entrypoint contract, the local runner, Databricks."""
