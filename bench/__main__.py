"""Run every benchmark: `python -m bench [--quick] [NAME ...]`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench._harness import Result, measure, table


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="only modules bench_NAME (default: all)")
    parser.add_argument(
        "--quick", action="store_true", help="small data sets, fewer repeats (a smoke run)"
    )
    arguments = parser.parse_args()
    scale = "quick" if arguments.quick else "full"
    repeats, sample_seconds = (3, 0.05) if arguments.quick else (9, 0.2)

    here = Path(__file__).parent
    modules = sorted(
        info.name for info in pkgutil.iter_modules([str(here)]) if info.name.startswith("bench_")
    )
    if arguments.names:
        modules = [m for m in modules if m.removeprefix("bench_") in arguments.names]
    results: list[Result] = []
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        for case in module.benchmarks(scale):
            print(f"  {case.group}: {case.name} ...", file=sys.stderr, flush=True)
            results.append(measure(case, repeats=repeats, sample_seconds=sample_seconds))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
