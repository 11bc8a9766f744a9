"""Timing and the table: interleaved repeats, medians, ratios against a baseline."""

from __future__ import annotations

import gc
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

Scale = Literal["quick", "full"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One measurement: `subject` against `baseline`, both called with no arguments.

    `low`/`high` are the bounds the ratio should meet (from the issue's "Done when");
    the table shows them and whether they hold.
    """

    group: str
    name: str
    subject: Callable[[], object]
    baseline_name: str
    baseline: Callable[[], object]
    high: float | None = None
    low: float | None = None
    note: str = ""
    repeats: int | None = None  # more samples for slow, noisy cases (argon2 with p=4)


@dataclass(frozen=True, slots=True)
class Result:
    """The medians of one case, in seconds per call."""

    case: Case
    subject: float
    baseline: float

    @property
    def ratio(self) -> float:
        return self.subject / self.baseline

    @property
    def verdict(self) -> str:
        if self.case.high is None and self.case.low is None:
            return ""
        ok = (self.case.high is None or self.ratio <= self.case.high) and (
            self.case.low is None or self.ratio >= self.case.low
        )
        return "ok" if ok else "MISSED"

    @property
    def target(self) -> str:
        low, high = self.case.low, self.case.high
        if low is not None and high is not None:
            return f"{low:g}-{high:g}"
        if high is not None:
            return f"<= {high:g}"
        if low is not None:
            return f">= {low:g}"
        return ""


def _calls_per_sample(function: Callable[[], object], seconds: float) -> int:
    """How many calls make one sample of about `seconds`."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            function()
        elapsed = time.perf_counter() - start
        if elapsed >= seconds / 4 or number >= 1 << 22:
            return max(1, int(number * seconds / max(elapsed, 1e-9)))
        number *= 4


def _sample(function: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        function()
    return (time.perf_counter() - start) / number


def measure(case: Case, *, repeats: int, sample_seconds: float) -> Result:
    """Time a case: baseline and subject alternate so drift hits both alike."""
    case.subject()  # warm caches and lazy imports before any sample
    case.baseline()
    subject_number = _calls_per_sample(case.subject, sample_seconds)
    baseline_number = _calls_per_sample(case.baseline, sample_seconds)
    subject_samples: list[float] = []
    baseline_samples: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(case.repeats or repeats):
            baseline_samples.append(_sample(case.baseline, baseline_number))
            subject_samples.append(_sample(case.subject, subject_number))
    finally:
        if gc_was_enabled:
            gc.enable()
    return Result(case, statistics.median(subject_samples), statistics.median(baseline_samples))


def _duration(seconds: float) -> str:
    for unit, factor in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= factor:
            return f"{seconds / factor:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def table(results: list[Result]) -> str:
    """Render results as a Markdown table (pasteable into notes and docs)."""
    header = ["group", "case", "subject", "baseline", "vs", "ratio", "target", ""]
    rows = [
        [
            r.case.group,
            r.case.name,
            _duration(r.subject),
            _duration(r.baseline),
            r.case.baseline_name,
            f"{r.ratio:.3f}",
            r.target,
            r.verdict,
        ]
        for r in results
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in [header, ["-" * w for w in widths], *rows]
    ]
    return "\n".join(lines)
