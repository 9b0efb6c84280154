"""Adapters to external services (Triton server and client). Not part of the pure library."""
