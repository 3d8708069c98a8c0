"""Batch scoring: the streamed job and its column checks."""
