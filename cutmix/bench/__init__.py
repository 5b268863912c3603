"""Benchmarks reachable from ``cutmix bench`` (and from the scripts in ``benchmarks/``)."""
