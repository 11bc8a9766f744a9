"""Hostile input costs what a wrong password costs: 1 MB passwords and emails.

Issue 12 asks that a sign-in with a 1 MB password, a sign-in with a 1 MB email, and
`passwords.begin_reset` with a 1 MB email each cost at most 1.1x an ordinary
wrong-password sign-in of an existing account, measured side by side in one run.
Each case here interleaves its subject with that baseline, on a SQLite store, with
the default argon2 parameters (quick: cheap ones).

The values are the pathological form for Unicode normalisation: one base letter,
then n combining marks of one class and n of another, which canonical reordering
(NFC, NFKC) sorts in time quadratic in n. Padded to 1 MiB of UTF-8 they take
minutes to normalise; bounded first, as they must be, they cost nothing. Quick mode
uses 4 KiB values (2,047 code points), still over every input limit, so it exercises
the same refusal while an unbounded path costs milliseconds, not minutes;
`--hostile-size BYTES` sets another size (for a full run of code that is still slow).
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench._harness import Case, Scale
from bench.bench_passwords import QUICK
from bpart_auth import (
    RFC_9106_LOW_MEMORY,
    Auth,
    FailureLimit,
    InvalidCredentials,
    InvalidInput,
    SQLStore,
    Throttle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

EMAIL = "bench-admin@example.com"
PASSWORD = "correct horse battery staple"  # noqa: S105 - a benchmark account
WRONG = "a wrong password, long enough"
FULL_SIZE = 1 << 20  # bytes of UTF-8
QUICK_SIZE = 4 << 10
size_override: int | None = None  # `python -m bench --hostile-size BYTES`


def hostile(size: int, *, suffix: str = "") -> str:
    """`"a" + "\\u0301" * n + "\\u0316" * n + suffix`, padded to `size` bytes of UTF-8."""
    marks = (size - 1 - len(suffix.encode())) // 4  # each mark is 2 bytes, two per n
    value = "a" + "\u0301" * marks + "\u0316" * marks
    return value + "a" * (size - len(value.encode()) - len(suffix.encode())) + suffix


def _refused(auth: Auth, email: str, password: str) -> None:
    try:
        auth.passwords.sign_in(email, password)
    except InvalidCredentials:
        return
    raise AssertionError("the sign-in should be refused as wrong credentials")


def _no_reset(auth: Auth, email: str) -> None:
    try:
        token = auth.passwords.begin_reset(email)
    except InvalidInput:  # refusing a malformed address outright is fine too
        return
    if token is not None:
        raise AssertionError("begin_reset gave a token for a hostile address")


def benchmarks(scale: Scale) -> Iterator[Case]:
    size = size_override or (QUICK_SIZE if scale == "quick" else FULL_SIZE)
    parameters = QUICK if scale == "quick" else RFC_9106_LOW_MEMORY
    password = hostile(size)
    email = hostile(size, suffix="@example.com")
    with tempfile.TemporaryDirectory(prefix="bpart-bench-") as folder:
        store = SQLStore(f"sqlite:///{Path(folder) / 'hostile.db'}", create_schema=True)
        # Every sample is a failure: a limit no run reaches keeps the throttle out of it.
        throttle = Throttle(per_account=FailureLimit(failures=10_000, window=timedelta(seconds=1)))
        auth = Auth(store, password_hashing=parameters, throttle=throttle)
        auth.create_account(email=EMAIL, password=PASSWORD)
        value = f"{size / (1 << 20):g} MiB" if size >= 1 << 20 else f"{size / 1024:g} KiB"
        argon2 = (
            f"t={parameters.time_cost}, {parameters.memory_cost // 1024} MiB, "
            f"p={parameters.parallelism}"
        )
        common = {
            "group": "hostile",
            "baseline_name": "wrong-password sign-in",
            "baseline": lambda: _refused(auth, EMAIL, WRONG),
            "high": 1.1,
            "repeats": None if scale == "quick" else 21,
        }
        try:
            yield Case(
                name=f"passwords.sign_in, {value} password [{argon2}]",
                subject=lambda: _refused(auth, EMAIL, password),
                **common,  # type: ignore[arg-type]
            )
            yield Case(
                name=f"passwords.sign_in, {value} email [{argon2}]",
                subject=lambda: _refused(auth, email, WRONG),
                **common,  # type: ignore[arg-type]
            )
            yield Case(
                name=f"passwords.begin_reset, {value} email [{argon2}]",
                subject=lambda: _no_reset(auth, email),
                **common,  # type: ignore[arg-type]
            )
        finally:
            store.close()
