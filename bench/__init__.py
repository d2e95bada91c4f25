"""Benchmarks (not tests): `python -m bench.scale`, `python -m bench.locomo`. See bench/README.md."""
