"""Benchmarks that run from the CLI (``hwnas bench ...``)."""
