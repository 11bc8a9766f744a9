"""Password verification: our wrapper's overhead, and the dummy verify's timing match."""

from __future__ import annotations

from typing import TYPE_CHECKING

import argon2

from bench._harness import Case, Scale
from bpart_auth.passwords import RFC_9106_LOW_MEMORY, Argon2Parameters, PasswordHasher

if TYPE_CHECKING:
    from collections.abc import Iterator

TYPED = "correct horse battery staple"  # what the user types
MISTYPED = "correct horse battery stapel"

# A smoke run needs the ratios, not the production cost: 4 MiB, one pass, one lane
# still makes argon2 dominate each call by far.
QUICK = Argon2Parameters(time_cost=1, memory_cost=4 * 1024, parallelism=1)


def benchmarks(scale: Scale) -> Iterator[Case]:
    parameters = QUICK if scale == "quick" else RFC_9106_LOW_MEMORY
    label = (
        "t=1, 4 MiB, p=1 (quick)"
        if scale == "quick"
        else f"t={parameters.time_cost}, {parameters.memory_cost // 1024} MiB, "
        f"p={parameters.parallelism} (default)"
    )
    ours = PasswordHasher(parameters)
    bare = argon2.PasswordHasher(
        time_cost=parameters.time_cost,
        memory_cost=parameters.memory_cost,
        parallelism=parameters.parallelism,
        hash_len=parameters.hash_len,
        salt_len=parameters.salt_len,
    )
    stored = ours.hash(TYPED)

    yield Case(
        group="passwords",
        name=f"PasswordHasher.verify, match [{label}]",
        subject=lambda: ours.verify(password=TYPED, password_hash=stored),
        baseline_name="argon2.PasswordHasher.verify",
        baseline=lambda: bare.verify(stored, TYPED),
        high=1.02,
        repeats=None if scale == "quick" else 41,
        note="NFKC, scheme and version checks, needs-rehash check",
    )
    yield Case(
        group="passwords",
        name=f"verify_dummy (unknown email) [{label}]",
        subject=lambda: ours.verify_dummy(TYPED),
        baseline_name="verify, wrong password",
        baseline=lambda: ours.verify(password=MISTYPED, password_hash=stored),
        low=0.9,
        high=1.1,
        repeats=None if scale == "quick" else 41,
        note="timing must not tell unknown emails from wrong passwords",
    )
