"""hwnas: hardware-aware neural architecture search for edge devices."""

__version__ = "0.1.0"
