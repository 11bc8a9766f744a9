"""bpart_auth benchmarks: `./dev bench` (or `python -m bench`) runs them all.

Each `bench_*.py` module defines `benchmarks(scale)`, a generator of `Case`s. A case
times a subject against a baseline measured in the same run and reports the ratio;
targets from the issues are printed next to it, never asserted in tests.
"""
