"""Helpers for testing an app, or a store, that uses bpart_auth.

- `CHEAP_FOR_TESTS`: argon2id parameters that make hashing instant. Pass them as
  `Auth(..., password_hashing=CHEAP_FOR_TESTS)` in tests only, never in production.
- `FakeGoogle`: an in-process Google (discovery, keys, codes with PKCE, signed ID
  tokens) for an app's own tests; needs `responses` (the `test` extra).
- `FakeMicrosoft`: the same for Entra ID (tenant-style discovery, `tid`/`oid` claims,
  switches for a tenant requiring admin consent and for declined consent).
- `StoreContract`: the store contract kit, a pytest base class every
  `AccountStore` implementation passes unchanged (needs pytest).
- `SecondFactorContract`: the same for a store that also implements
  `SecondFactorRecords` (a separate class, with the same `store` fixture).
- `SoftAuthenticator`: a software passkey authenticator and browser, answering
  WebAuthn options in the browser's JSON shape (needs the `mfa` extra).

Examples:
    >>> from bpart_auth import Auth, MemoryStore
    >>> from bpart_auth.testing import CHEAP_FOR_TESTS
    >>> auth = Auth(MemoryStore(), password_hashing=CHEAP_FOR_TESTS)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bpart_auth.passwords import CHEAP_FOR_TESTS
from bpart_auth.testing.fakes import FakeAuthorizeError, FakeGoogle, FakeMicrosoft

if TYPE_CHECKING:
    from bpart_auth.testing._soft_authenticator import SoftAuthenticator
    from bpart_auth.testing.store_contract import SecondFactorContract, StoreContract

__all__ = [
    "CHEAP_FOR_TESTS",
    "FakeAuthorizeError",
    "FakeGoogle",
    "FakeMicrosoft",
    "SecondFactorContract",
    "SoftAuthenticator",
    "StoreContract",
]


def __getattr__(name: str) -> Any:  # noqa: ANN401 - module attributes of any kind
    # Loaded on first use so that importing bpart_auth.testing needs pytest only for
    # the helpers that are pytest classes.
    if name in ("StoreContract", "SecondFactorContract"):
        from bpart_auth.testing import store_contract  # noqa: PLC0415

        return getattr(store_contract, name)
    if name == "SoftAuthenticator":
        # Loaded on first use too: it needs cbor2 (the `mfa` extra).
        from bpart_auth.testing._soft_authenticator import SoftAuthenticator  # noqa: PLC0415

        return SoftAuthenticator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
