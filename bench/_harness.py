"""Timing and the table: interleaved samples, paired ratios, N, spread and load.

A case times a subject against a baseline in the same run. Samples alternate
(baseline, subject, baseline, subject, ...) so that drift on a shared machine hits
both alike; each adjacent pair gives one ratio, and the table shows the median of
those ratios, how many pairs there were, their spread (the interquartile range as a
percentage of the median) and the 1-minute load average when the case finished.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

Scale = Literal["quick", "full"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One measurement: a subject against `baseline`, both timed in this run.

    The subject is either `subject`, called again and again, or `fresh`, which
    returns a one-shot call (say, completing a flow just begun): `fresh` runs
    outside the timed region and each call it returns is timed on its own.

    `low`/`high` are the bounds the ratio should meet (from the issue's "Done when");
    `budget` is the most seconds a subject call may take (the median), for a target
    the issue sets in time. The table shows them and whether they all hold. They are
    never asserted.
    """

    group: str
    name: str
    baseline_name: str
    baseline: Callable[[], object]
    subject: Callable[[], object] | None = None
    fresh: Callable[[], Callable[[], object]] | None = None
    high: float | None = None
    low: float | None = None
    budget: float | None = None
    note: str = ""
    repeats: int | None = None  # more samples for slow, noisy cases (argon2 with p=4)

    def __post_init__(self) -> None:
        if (self.subject is None) == (self.fresh is None):
            raise ValueError(f"{self.name}: give exactly one of subject and fresh")


@dataclass(frozen=True, slots=True, kw_only=True)
class Skipped:
    """A case that could not run here (PostgreSQL absent, say), and why."""

    group: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """The samples of one case, in seconds per call, and the load when it ended."""

    case: Case
    subject_samples: Sequence[float]
    baseline_samples: Sequence[float]
    subject_calls: int  # calls per subject sample
    baseline_calls: int
    load: float

    @property
    def group(self) -> str:
        """The case's group."""
        return self.case.group

    @property
    def subject(self) -> float:
        """Median seconds per subject call."""
        return statistics.median(self.subject_samples)

    @property
    def baseline(self) -> float:
        """Median seconds per baseline call."""
        return statistics.median(self.baseline_samples)

    @property
    def ratios(self) -> list[float]:
        """One ratio per interleaved (baseline, subject) pair."""
        return [s / b for s, b in zip(self.subject_samples, self.baseline_samples, strict=True)]

    @property
    def ratio(self) -> float:
        """The median of the paired ratios."""
        return statistics.median(self.ratios)

    @property
    def spread(self) -> float:
        """The paired ratios' interquartile range, as a fraction of their median."""
        ratios = self.ratios
        if len(ratios) < 2:  # quartiles need two points
            return 0.0
        first, _, third = statistics.quantiles(ratios, n=4, method="inclusive")
        return (third - first) / statistics.median(ratios)

    @property
    def verdict(self) -> str:
        case = self.case
        if case.high is None and case.low is None and case.budget is None:
            return ""
        ok = (
            (case.high is None or self.ratio <= case.high)
            and (case.low is None or self.ratio >= case.low)
            and (case.budget is None or self.subject <= case.budget)
        )
        return "ok" if ok else "MISSED"

    @property
    def target(self) -> str:
        low, high = self.case.low, self.case.high
        if low is not None and high is not None:
            ratio = f"{low:g}-{high:g}"
        elif high is not None:
            ratio = f"<= {high:g}"
        elif low is not None:
            ratio = f">= {low:g}"
        else:
            ratio = ""
        if self.case.budget is None:
            return ratio
        budget = f"<= {duration(self.case.budget)}"
        return f"{budget}, ratio {ratio}" if ratio else budget


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """A figure a scenario measured itself (a load test), beside its baseline of the same run.

    `subject` and `baseline` are already formatted; `ratio` is subject / baseline; `n`
    and `spread` describe the repeats the figure is the median of; `target` and `ok`
    say what the issue asks and whether it holds (reported, never asserted).
    """

    group: str
    name: str
    subject: str
    baseline: str
    baseline_name: str
    ratio: float
    n: int
    spread: float
    load: float
    target: str = ""
    ok: bool | None = None

    @property
    def verdict(self) -> str:
        """ "ok", "MISSED", or "" when there is no target."""
        if self.ok is None:
            return ""
        return "ok" if self.ok else "MISSED"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A benchmark that drives load itself and returns its own rows (`Measured`)."""

    group: str
    name: str
    run: Callable[[], Sequence[Measured]]


def load_average() -> float:
    """The 1-minute load average (0.0 where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no getloadavg
        return 0.0


def _calls_per_sample(call: Callable[[], float], seconds: float) -> int:
    """How many calls make one sample of about `seconds`; `call` returns its own time."""
    number = 1
    while True:
        elapsed = sum(call() for _ in range(number))
        if elapsed >= seconds / 4 or number >= 1 << 22:
            return max(1, int(number * seconds / max(elapsed, 1e-9)))
        number *= 4


def _timed(function: Callable[[], object]) -> Callable[[], float]:
    def call() -> float:
        start = time.perf_counter()
        function()
        return time.perf_counter() - start

    return call


def _timed_fresh(fresh: Callable[[], Callable[[], object]]) -> Callable[[], float]:
    def call() -> float:
        one_shot = fresh()  # untimed: begin the flow, play the user
        start = time.perf_counter()
        one_shot()
        return time.perf_counter() - start

    return call


def _sample(function: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - start) / number


def _sample_fresh(call: Callable[[], float], number: int) -> float:
    return sum(call() for _ in range(number)) / number


def measure(case: Case, *, repeats: int, sample_seconds: float) -> Result:
    """Time a case: baseline and subject samples alternate, `repeats` pairs."""
    if case.fresh is not None:
        subject_call = _timed_fresh(case.fresh)
    else:
        assert case.subject is not None  # noqa: S101 - Case.__post_init__ checked it
        subject_call = _timed(case.subject)
    subject_call()  # warm caches and lazy imports before any sample
    case.baseline()
    subject_number = _calls_per_sample(subject_call, sample_seconds)
    baseline_number = _calls_per_sample(_timed(case.baseline), sample_seconds)
    subject_samples: list[float] = []
    baseline_samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(case.repeats or repeats):
            baseline_samples.append(_sample(case.baseline, baseline_number))
            if case.fresh is not None:
                subject_samples.append(_sample_fresh(subject_call, subject_number))
            else:
                assert case.subject is not None  # noqa: S101
                subject_samples.append(_sample(case.subject, subject_number))
            gc.collect()  # between pairs, so no sample pays for another's garbage
    finally:
        if gc_was_enabled:
            gc.enable()
    return Result(
        case=case,
        subject_samples=subject_samples,
        baseline_samples=baseline_samples,
        subject_calls=subject_number,
        baseline_calls=baseline_number,
        load=load_average(),
    )


def duration(seconds: float) -> str:
    """`seconds` in the unit that reads best: 1.23 ms, 45.6 us."""
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


HEADER = ("case", "subject", "baseline", "vs", "ratio", "N", "IQR", "load", "target", "")


def row(result: Result | Measured | Skipped) -> list[str]:
    """One table row (without the group): measured figures, or the skip reason."""
    if isinstance(result, Skipped):
        return [result.name, f"skipped: {result.reason}", "", "", "", "", "", "", "", ""]
    if isinstance(result, Measured):
        return [
            result.name,
            result.subject,
            result.baseline,
            result.baseline_name,
            f"{result.ratio:.3f}",
            str(result.n),
            f"{100 * result.spread:.1f}%",
            f"{result.load:.2f}",
            result.target,
            result.verdict,
        ]
    return [
        result.case.name,
        duration(result.subject),
        duration(result.baseline),
        result.case.baseline_name,
        f"{result.ratio:.3f}",
        str(len(result.subject_samples)),
        f"{100 * result.spread:.1f}%",
        f"{result.load:.2f}",
        result.target,
        result.verdict,
    ]


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with aligned columns (readable as text, too)."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "| "
        + " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        + " |"
        for line in [header, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines)


def table(results: Sequence[Result | Measured | Skipped]) -> str:
    """Every result in one Markdown table, grouped as measured."""
    header = ["group", *HEADER]
    return markdown_table(header, [[result.group, *row(result)] for result in results])
