"""Monitoring: inference-log readers, the drift check, its report and window."""
