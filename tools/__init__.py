"""Benchmarks: run each from the checkout as a module, e.g. ``.venv/bin/python -m tools.bench_blackbox``."""
