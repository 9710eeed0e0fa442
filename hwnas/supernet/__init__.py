"""Differentiable search: supernets of mixed operations and the expected-latency loss."""
