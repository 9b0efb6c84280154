"""Prefect tasks: thin wrappers that add retries, cache policy and tags around library calls."""
