"""Prefect flows: orchestration only (sequencing and fan-out of tasks)."""
