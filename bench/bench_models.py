"""The data model's cost where it sits on a hot path: identities as lookup keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench._harness import Case, Scale
from bpart_auth import Identity

if TYPE_CHECKING:
    from collections.abc import Iterator

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def benchmarks(scale: Scale) -> Iterator[Case]:
    size = 10_000 if scale == "quick" else 100_000
    by_identity = {Identity("microsoft", TENANT, f"oid-{i}"): i for i in range(size)}
    by_tuple = {("microsoft", TENANT, f"oid-{i}"): i for i in range(size)}
    subject = f"oid-{size // 2}"

    yield Case(
        group="models",
        name=f"build Identity + dict lookup ({size:,} keys)",
        subject=lambda: by_identity[Identity("microsoft", TENANT, subject)],
        baseline_name="tuple key",
        baseline=lambda: by_tuple[("microsoft", TENANT, subject)],
        note="the validation in Identity.__post_init__ is the difference",
    )
