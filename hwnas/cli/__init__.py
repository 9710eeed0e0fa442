"""The ``hwnas`` command line: it only wires library parts together."""
