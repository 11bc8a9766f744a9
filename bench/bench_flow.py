"""`Auth.complete` without the network: everything the library does at a callback.

The token endpoint's answer (a freshly signed ID token per flow) is prepared before
timing, and the provider's code exchange returns it instead of making the HTTP
request; everything else is the real path: opening the sealed state, the state
check, the single-use guard, full ID-token validation with cached keys, the account
lookup and the outcome.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._harness import Case, Scale
from bpart_auth import Auth, MemoryStore, SQLStore
from bpart_auth._idtoken import validate_id_token
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle

if TYPE_CHECKING:
    from collections.abc import Iterator

SECRET = "a benchmark secret key, 32 bytes+"  # noqa: S105 - not a real secret
CALLBACK = "https://backoffice.test/auth/callback"


class _Flows:
    """Callbacks ready to complete, each with the ID token its code would buy."""

    def __init__(self, auth: Auth, fake: FakeGoogle, count: int) -> None:
        self.items: list[tuple[str, dict[str, str], str]] = []
        idp = fake._idp  # noqa: SLF001 - the benchmark signs tokens as the fake would
        for _ in range(count):
            start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
            params = fake.authorize(start.url, sub="bench-user", email="ann@example.com")
            grant = idp._grants.pop(params["code"])  # noqa: SLF001
            self.items.append((start.state, params, idp.id_token(grant.claims)))
        self.position = 0

    def next(self) -> tuple[str, dict[str, str], str]:
        item = self.items[self.position % len(self.items)]
        self.position += 1
        return item


def _auth(store: Any, fake: FakeGoogle) -> tuple[Auth, Any]:  # noqa: ANN401 - a store
    provider = fake.provider()
    auth = Auth(store, secret_key=SECRET, providers=[provider], password_hashing=CHEAP_FOR_TESTS)
    auth.create_account(email="ann@example.com")
    return auth, provider


def _case(label: str, store: Any, fake: FakeGoogle, count: int) -> Case:  # noqa: ANN401
    auth, provider = _auth(store, fake)
    # Warm: discovery, keys, and the first sign-in, which links the identity.
    first = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    auth.complete(state=first.state, params=fake.authorize(first.url, sub="bench-user"))
    flows = _Flows(auth, fake, count)
    current: dict[str, str] = {}
    oidc = provider._oidc  # noqa: SLF001
    oidc.exchange_code = lambda _flow, _params: current["id_token"]  # type: ignore[method-assign]

    def complete() -> None:
        state, params, id_token = flows.next()
        current["id_token"] = id_token
        auth.complete(state=state, params=params)

    sample_state, _, sample_token = flows.items[0]
    nonce = auth._sealer.open(sample_state).nonce  # noqa: SLF001
    keys = oidc.keys()
    issuer = oidc.metadata()["issuer"]

    def validate() -> None:
        validate_id_token(
            sample_token,
            keys=keys,
            provider="google",
            issuer=issuer,
            audience=oidc.client_id,
            nonce=nonce,
        )

    return Case(
        group="flow",
        name=f"Auth.complete, network excluded (target < 1 ms), {label}",
        subject=complete,
        baseline_name="validate_id_token alone",
        baseline=validate,
        note="target: under 1 ms per call",
    )


def benchmarks(scale: Scale) -> Iterator[Case]:
    count = 2_000 if scale == "quick" else 15_000
    with FakeGoogle() as fake, tempfile.TemporaryDirectory() as directory:
        yield _case("MemoryStore", MemoryStore(), fake, count)
        store = SQLStore(f"sqlite:///{Path(directory) / 'bench.db'}", create_schema=True)
        try:
            yield _case("SQLStore (SQLite file)", store, fake, count)
        finally:
            store.close()
