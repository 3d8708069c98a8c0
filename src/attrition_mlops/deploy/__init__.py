"""Deployment: the serving image, the smoke test and the rollout backends."""
