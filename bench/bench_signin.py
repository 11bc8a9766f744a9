"""Password sign-in through `Auth` on a SQLite store of 1M accounts (quick: 10k).

Against one bare argon2-cffi verify with the same parameters in the same run
(target <= 1.02: the library's own work must vanish next to argon2), and unknown
email against wrong password (target 0.9-1.1: timing must not tell them apart).
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import argon2

from bench._harness import Case, Scale
from bench.bench_passwords import QUICK
from bench.bench_store import _fill_sqlite, _label
from bpart_auth import (
    RFC_9106_LOW_MEMORY,
    Auth,
    FailureLimit,
    InvalidCredentials,
    SQLStore,
    Throttle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

PASSWORD = "correct horse battery staple"  # noqa: S105 - a benchmark account
EMAIL = "bench-admin@example.com"


def _refused(auth: Auth, email: str, password: str) -> None:
    try:
        auth.passwords.sign_in(email, password)
    except InvalidCredentials:
        return
    raise AssertionError("sign-in should have failed")  # pragma: no cover


def benchmarks(scale: Scale) -> Iterator[Case]:
    size = 10_000 if scale == "quick" else 1_000_000
    parameters = QUICK if scale == "quick" else RFC_9106_LOW_MEMORY
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "signin.db"
        store = SQLStore(f"sqlite:///{path}")
        store.upgrade_schema()
        _fill_sqlite(path, size)
        # Failures must not throttle the benchmark: a limit no run reaches.
        throttle = Throttle(per_account=FailureLimit(failures=10_000, window=timedelta(seconds=1)))
        auth = Auth(store, password_hashing=parameters, throttle=throttle)
        admin = auth.create_account(email=EMAIL, password=PASSWORD)
        found = store.find_password_hash(admin.email)
        stored = (found[1] if found is not None else None) or ""
        bare = argon2.PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost,
            parallelism=parameters.parallelism,
            hash_len=parameters.hash_len,
            salt_len=parameters.salt_len,
        )
        label = (
            f"{_label(size)} accounts, t={parameters.time_cost}, "
            f"{parameters.memory_cost // 1024} MiB, p={parameters.parallelism}"
        )
        try:
            yield Case(
                group="sign-in",
                name=f"passwords.sign_in, success [{label}]",
                subject=lambda: auth.passwords.sign_in(EMAIL, PASSWORD),
                baseline_name="bare argon2 verify",
                baseline=lambda: bare.verify(stored, PASSWORD),
                high=1.02,
                repeats=None if scale == "quick" else 41,
            )
            yield Case(
                group="sign-in",
                name=f"unknown email vs wrong password [{label}]",
                subject=lambda: _refused(auth, "nobody@example.com", PASSWORD),
                baseline_name="wrong password",
                baseline=lambda: _refused(auth, EMAIL, "a wrong password, long enough"),
                low=0.9,
                high=1.1,
                repeats=None if scale == "quick" else 41,
            )
        finally:
            store.close()
