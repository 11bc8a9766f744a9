"""What a run was (date, code, machine, load) and writing its tables into the docs.

`docs/benchmarks.md` is prose written by hand around generated blocks:

    <!-- bench:run -->
    (the run's date, commit, machine and load)
    <!-- /bench:run -->

    <!-- bench:GROUP -->
    (the table of every case in GROUP)
    <!-- /bench:GROUP -->

`write_docs` replaces what lies between each pair of markers and nothing else. Every
group the run measured needs a block, and every block needs a group, so the page
cannot keep a figure that no benchmark produced.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import re
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench._harness import (
    HEADER,
    Measured,
    Result,
    Skipped,
    load_average,
    markdown_table,
    row,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
_BLOCK = re.compile(r"(<!-- bench:([\w-]+) -->\n)(.*?)(<!-- /bench:\2 -->)", re.DOTALL)


def _commit() -> str:
    """The checked-out commit, marked when the work tree has changes; "" outside git."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""
    return f"{head} + local changes" if dirty else head


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """When and where a run happened, and how hard the machine was working."""

    started: dt.datetime
    scale: str
    repeats: int
    sample_seconds: float
    commit: str
    load_start: float
    load_end: float | None = None

    @classmethod
    def now(cls, *, scale: str, repeats: int, sample_seconds: float) -> RunInfo:
        return cls(
            started=dt.datetime.now(dt.timezone.utc),
            scale=scale,
            repeats=repeats,
            sample_seconds=sample_seconds,
            commit=_commit(),
            load_start=load_average(),
        )

    def finished(self, load: float) -> RunInfo:
        return dataclasses.replace(self, load_end=load)

    def describe(self) -> str:
        """One paragraph: date, code, machine, load, and how samples were taken."""
        load = f"{self.load_start:.2f}"
        if self.load_end is not None:
            load += f" at the start, {self.load_end:.2f} at the end"
        code = f" of commit {self.commit}" if self.commit else ""
        return (
            f"{self.scale.capitalize()} run{code} on {self.started:%Y-%m-%d %H:%M} UTC: "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"{os.cpu_count()} CPUs, 1-minute load average {load}. "
            f"Each case takes N interleaved pairs of samples (baseline, then subject; "
            f"{self.repeats} unless the case says more), each sample at least "
            f"{self.sample_seconds:g} s of calls; ratio is the median of the N paired "
            f"ratios, IQR their interquartile range as a percentage of that median, "
            f"load the 1-minute load average when the case ended."
            + (
                " A quick run uses small data, small hostile values and cheap argon2: a smoke"
                " run, whose verdicts say nothing about the targets (set for full runs)."
                if self.scale == "quick"
                else ""
            )
        )


def _group_tables(results: Sequence[Result | Measured | Skipped]) -> dict[str, str]:
    rows: dict[str, list[list[str]]] = {}
    for result in results:
        rows.setdefault(result.group, []).append(row(result))
    return {group: markdown_table(list(HEADER), lines) for group, lines in rows.items()}


def write_docs(path: Path, run: RunInfo, results: Sequence[Result | Measured | Skipped]) -> None:
    """Replace the generated blocks of `path` with this run's figures.

    Raises:
        SystemExit: A measured group has no block in the page, or a block no group.
    """
    text = path.read_text(encoding="utf-8")
    tables = _group_tables(results)
    tables["run"] = run.describe()
    blocks = {match.group(2) for match in _BLOCK.finditer(text)}
    missing, stale = sorted(tables.keys() - blocks), sorted(blocks - tables.keys())
    if missing or stale:
        raise SystemExit(
            f"{path}: no block for {missing or 'nothing'}; "
            f"blocks no benchmark fills: {stale or 'none'}"
        )
    path.write_text(
        # Blank lines around each table: Markdown would read it into the comment's HTML block.
        _BLOCK.sub(lambda m: f"{m.group(1)}\n{tables[m.group(2)]}\n\n{m.group(4)}", text),
        encoding="utf-8",
    )
