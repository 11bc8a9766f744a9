"""Helpers for testing an app, or a store, that uses bpart_auth.

- `StoreContract`: the store contract kit, a pytest base class every
  `AccountStore` implementation passes unchanged (needs pytest).

Examples:
    >>> from bpart_auth.testing import StoreContract
    >>> StoreContract.race_threads
    50
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpart_auth.testing.store_contract import StoreContract

__all__ = ["StoreContract"]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attributes of any kind
    # Loaded on first use so that importing bpart_auth.testing needs pytest only for
    # the helpers that are pytest classes.
    if name == "StoreContract":
        from bpart_auth.testing.store_contract import StoreContract  # noqa: PLC0415

        return StoreContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
