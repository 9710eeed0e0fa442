"""Datasets for search and training, with the splits bilevel optimisation needs."""
