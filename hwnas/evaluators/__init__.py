"""Accuracy evaluators for black-box search: a benchmark table, a trained supernet's
sub-networks, or short training from scratch. Each has ``evaluate(archs) -> fractions``."""
