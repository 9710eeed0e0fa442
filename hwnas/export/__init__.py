"""Exporting built models to the formats devices run."""
