"""bpart_auth benchmarks: `./dev bench` (or `python -m bench`) runs them all.

Each `bench_*.py` module defines `benchmarks(scale)`, a generator of `Case`s (and of
`Skipped` rows for what cannot run here, with the reason). A case times a subject
against a baseline measured in the same run, interleaved, and reports the ratio with
N, its spread and the load; targets from the issues are printed next to it, never
asserted in tests. `--write-docs` writes the tables into `docs/benchmarks.md`.
"""
