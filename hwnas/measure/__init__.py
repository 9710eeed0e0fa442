"""Timing statistics, provenance and the measurement protocol.

``stats`` and ``protocol`` need nothing but numpy and the standard library, so the
on-device agent can use them where torch is not installed.
"""
