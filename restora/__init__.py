"""Restora: AI video restoration pipeline (pure library: no Prefect or Triton imports here)."""

__version__ = "0.1.0"
