"""Run every benchmark: `python -m bench [--quick] [--write-docs [FILE]] [NAME ...]`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path

from bench import bench_hostile
from bench._docs import DOCS, RunInfo, write_docs
from bench._harness import Measured, Result, Scenario, Skipped, load_average, measure, table

RUN_LAST = frozenset({"bench_async"})
QUICK = (3, 0.05)  # interleaved pairs per case, seconds per sample
FULL = (9, 0.2)


def main() -> int:  # noqa: C901 - the command line, then the loop over modules
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help="only modules bench_NAME (default: all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small data sets, cheap argon2, few samples: a smoke run that asserts nothing",
    )
    parser.add_argument(
        "--write-docs",
        nargs="?",
        const=DOCS,
        type=Path,
        metavar="FILE",
        help=f"also rewrite the generated tables of FILE (default {DOCS.name}) from this run",
    )
    parser.add_argument(
        "--hostile-size",
        type=int,
        metavar="BYTES",
        help="size of the hostile values in bench_hostile (default: 1 MiB; quick: 4 KiB)",
    )
    arguments = parser.parse_args()
    if arguments.hostile_size is not None:
        if arguments.hostile_size < 64:  # room for "a", the marks and "@example.com"
            parser.error("--hostile-size must be at least 64 bytes")
        bench_hostile.size_override = arguments.hostile_size
    if arguments.write_docs is not None and arguments.names:
        parser.error("--write-docs needs a run of every module (no NAME)")
    scale = "quick" if arguments.quick else "full"
    repeats, sample_seconds = QUICK if arguments.quick else FULL

    here = Path(__file__).parent
    # The load test runs last: the minute of load it leaves behind (the 1-minute load
    # average reached 30 on 2 cores) would otherwise push the next modules into noise.
    modules = sorted(
        (info.name for info in pkgutil.iter_modules([str(here)]) if info.name.startswith("bench_")),
        key=lambda name: (name in RUN_LAST, name),
    )
    if arguments.names:
        unknown = set(arguments.names) - {m.removeprefix("bench_") for m in modules}
        if unknown:
            parser.error(f"no module bench_{', bench_'.join(sorted(unknown))}")
        modules = [m for m in modules if m.removeprefix("bench_") in arguments.names]
    run = RunInfo.now(scale=scale, repeats=repeats, sample_seconds=sample_seconds)
    print(f"bench: {scale} run, load {run.load_start:.2f}", file=sys.stderr, flush=True)
    results: list[Result | Measured | Skipped] = []
    for name in modules:
        module = importlib.import_module(f"bench.{name}")
        for case in module.benchmarks(scale):
            if isinstance(case, Skipped):
                print(f"  {case.group}: {case.name}: skipped, {case.reason}", file=sys.stderr)
                results.append(case)
                continue
            print(f"  {case.group}: {case.name} ...", file=sys.stderr, flush=True)
            if isinstance(case, Scenario):
                results.extend(case.run())
                continue
            results.append(measure(case, repeats=repeats, sample_seconds=sample_seconds))
    run = run.finished(load_average())
    print(run.describe())
    print(table(results))
    if arguments.write_docs is not None:
        write_docs(arguments.write_docs, run, results)
        print(f"wrote {arguments.write_docs}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
