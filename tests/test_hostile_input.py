"""Hostile input at every public entry point that takes request-derived values.

Property: whatever a request carries (any type, any size, any encoding, a valid value
mutated), the only exceptions that reach the app are `AuthError` subclasses, and a call
that fails writes nothing: the accounts, identities, invitations and reset tokens are
what they were (throttle counts and burnt flow states are the intended exceptions).

Runs on MemoryStore and on SQLStore (SQLite), with FakeGoogle and FakeMicrosoft behind
the redirect flows. Sizes go up to 1 MB, including strings whose Unicode normalisation
costs time quadratic in their length when nothing bounds them first.
"""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bpart_auth import Auth, AuthError, FailureLimit, MemoryStore, Throttle
from bpart_auth.services.sessions import ACCOUNT_KEY, FLOWS_KEY
from bpart_auth.store.sql import SQLStore
from bpart_auth.testing import CHEAP_FOR_TESTS
from bpart_auth.throttling import MemoryThrottle

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"
PASSWORD = "correct horse battery staple"
EXAMPLES = 120

MEGABYTE = 1 << 20
# NFC/NFKC reorder combining marks pairwise: quadratic in the run's length.
PATHOLOGICAL = ("a" + "\u0301" * (MEGABYTE // 2) + "\u0316" * (MEGABYTE // 2))[:MEGABYTE]
HUGE = [
    "a" * MEGABYTE,
    PATHOLOGICAL,
    "ann@" + "\u0301" * 70_000 + ".example",
    "ann@example.com" + " " * MEGABYTE,
    "\ud800" * 1000,
    "\x00" * 10_000,
    "\u202e" * 5_000,
    "ﬁ" * 100_000,  # NFKC expands each to two letters
]


# Values of any type a framework, a JSON body or an attacker may hand over.

surrogates = st.characters(codec=None, categories=["Cs"])
any_character = st.one_of(st.characters(), surrogates)
odd_text = st.one_of(
    st.text(any_character, max_size=60),
    st.text(string.printable, max_size=60),
    st.sampled_from(["", " ", "\t\n", "@", "a@b", "ann@example.com.", '"a b"@example.com']),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=40),
)
hostile = st.one_of(
    odd_text,
    scalars,
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
    st.sampled_from(HUGE),
)


@st.composite
def mutated(draw: st.DrawFn, valid: str) -> str:
    """A valid value with one change: an edit, a wrapper, a look-alike."""
    kind = draw(st.sampled_from(["replace", "insert", "delete", "wrap", "case", "width"]))
    if kind == "wrap":
        pad = draw(st.sampled_from([" ", "\x00", "\u200b", "\ufeff", "\u202e", "\ud800", "%00"]))
        return draw(st.sampled_from([pad + valid, valid + pad, pad + valid + pad]))
    if kind == "case":
        return valid.swapcase()
    if kind == "width":  # fullwidth forms, which NFKC folds back to ASCII
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in valid)
    at = draw(st.integers(min_value=0, max_value=max(len(valid) - 1, 0)))
    if kind == "delete":
        return valid[:at] + valid[at + 1 :]
    character = draw(any_character)
    if kind == "insert":
        return valid[:at] + character + valid[at:]
    return valid[:at] + character + valid[at + 1 :]


# The world: an Auth over a store, with an admin, an invitation, a reset token and a
# flow begun with each provider, so mutated values start from real ones.


@dataclass
class World:
    auth: Auth
    store: Any
    google: Any
    microsoft: Any
    admin_id: str
    invite_id: str
    invite_token: str
    reset_token: str
    renewals: int = 0

    def snapshot(self) -> object:
        """Everything a failed call must leave as it was."""
        if isinstance(self.store, MemoryStore):
            store = self.store
            with store._lock:
                return copy.deepcopy(
                    (
                        store._accounts,
                        store._account_by_email,
                        store._links,
                        store._invites,
                        store._invite_by_token,
                        store._invite_token,
                        {k: (v.account_id, v.expires_at) for k, v in store._reset_tokens.items()},
                    )
                )
        tables = ("bpart_accounts", "bpart_identities", "bpart_invites", "bpart_reset_tokens")
        with self.store._engine.connect() as connection:
            return tuple(
                sorted(tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}")))  # noqa: S608 - fixed names
                for table in tables
            )

    def renew(self) -> None:
        """A pending invitation and a live reset token, for calls that use one up."""
        self.renewals += 1
        _, self.invite_token = self.auth.invites.create(f"invitee{self.renewals}@example.com")
        reset_token = self.auth.passwords.begin_reset("boss@example.com")
        assert reset_token is not None
        self.reset_token = reset_token

    def begin(self, provider: str) -> tuple[str, dict[str, str]]:
        """A fresh flow with `provider` and the callback its fake would send."""
        start = self.auth.begin_sign_in(provider, redirect_uri=CALLBACK)
        fake = self.google if provider == "google" else self.microsoft
        params = fake.authorize(start.url, email="boss@example.com")
        return start.sealed_flow, params

    def session_with_flow(self) -> dict[str, Any]:
        """A session holding one pending Google flow."""
        session: dict[str, Any] = {}
        self.auth.begin_sign_in("google", session=session, redirect_uri=CALLBACK)
        return session


@pytest.fixture(params=["memory", "sqlite"])
def world(request, tmp_path, fakes):
    google, microsoft = fakes
    if request.param == "memory":
        store: Any = MemoryStore()
    else:
        store = SQLStore(f"sqlite:///{tmp_path / 'hostile.db'}", create_schema=True)
    # Limits high enough that every example reaches the password check, on the
    # store's own throttle backend where it has one (SQLStore's table takes the keys).
    limit = FailureLimit(failures=10_000, window=timedelta(hours=1))
    backend = store.throttle_backend() if isinstance(store, SQLStore) else MemoryThrottle()
    auth = Auth(
        store,
        throttle=Throttle(backend=backend, per_account=limit, per_address=limit),
        secret_key=SECRET,
        providers=[google.provider(), microsoft.provider()],
        redirect_uri=CALLBACK,
        password_hashing=CHEAP_FOR_TESTS,
        flow_lifetime=timedelta(hours=1),
    )
    admin = auth.create_account(email="boss@example.com", password=PASSWORD, name="Boss")
    invite, invite_token = auth.invites.create("manager@example.com", invited_by=admin.id)
    reset_token = auth.passwords.begin_reset("boss@example.com")
    assert reset_token is not None
    yield World(
        auth=auth,
        store=store,
        google=google,
        microsoft=microsoft,
        admin_id=admin.id,
        invite_id=invite.id,
        invite_token=invite_token,
        reset_token=reset_token,
    )
    if isinstance(store, SQLStore):
        store.close()


def only_auth_errors(world: World, call: Any) -> None:
    """Run `call`; an `AuthError` must leave the store as it was; nothing else may escape."""
    before = world.snapshot()
    try:
        call()
    except AuthError:
        assert world.snapshot() == before, "a failed call wrote to the store"


# Each entry point with the argument the request controls. `value` replaces it.

ENTRY_POINTS: dict[str, Any] = {
    "sign_in.email": lambda w, v: w.auth.passwords.sign_in(v, PASSWORD),
    "sign_in.password": lambda w, v: w.auth.passwords.sign_in("boss@example.com", v),
    "sign_in.client_address": lambda w, v: w.auth.passwords.sign_in(
        "boss@example.com", "wrong password, surely", client_address=v
    ),
    "begin_reset.email": lambda w, v: w.auth.passwords.begin_reset(v),
    "complete_reset.token": lambda w, v: w.auth.passwords.complete_reset(
        v, new_password="a brand new passphrase here"
    ),
    "complete_reset.new_password": lambda w, v: w.auth.passwords.complete_reset(
        w.reset_token, new_password=v
    ),
    "change.current": lambda w, v: w.auth.passwords.change(
        w.admin_id, current=v, new="another new passphrase here"
    ),
    "change.new": lambda w, v: w.auth.passwords.change(w.admin_id, current="wrong current", new=v),
    "change.account_id": lambda w, v: w.auth.passwords.change(
        v, current=PASSWORD, new="another new passphrase here"
    ),
    "create_account.email": lambda w, v: w.auth.create_account(email=v, password=PASSWORD),
    "create_account.password": lambda w, v: w.auth.create_account(
        email="new.person@example.com", password=v
    ),
    "create_account.name": lambda w, v: w.auth.create_account(
        email="named.person@example.com", name=v
    ),
    "invites.create.email": lambda w, v: w.auth.invites.create(v, invited_by=w.admin_id),
    "invites.create.invited_by": lambda w, v: w.auth.invites.create(
        "someone@example.com", invited_by=v
    ),
    "invites.create.data": lambda w, v: w.auth.invites.create(
        "data.person@example.com", data={"role": v}
    ),
    "invites.check.token": lambda w, v: w.auth.invites.check(v),
    "invites.accept.token": lambda w, v: w.auth.invites.accept_with_password(v, password=PASSWORD),
    "invites.accept.password": lambda w, v: w.auth.invites.accept_with_password(
        w.invite_token, password=v
    ),
    "invites.accept.name": lambda w, v: w.auth.invites.accept_with_password(
        w.invite_token, password=PASSWORD, name=v
    ),
    "invites.begin_accept.token": lambda w, v: w.auth.invites.begin_accept("microsoft", v),
    "invites.begin_accept.provider": lambda w, v: w.auth.invites.begin_accept(v, w.invite_token),
    "invites.revoke.id": lambda w, v: w.auth.invites.revoke(v),
    "invites.resend.id": lambda w, v: w.auth.invites.resend(v),
    "begin_sign_in.provider": lambda w, v: w.auth.begin_sign_in(v),
    "begin_sign_in.return_to": lambda w, v: w.auth.begin_sign_in("google", return_to=v),
    "begin_link.account_id": lambda w, v: w.auth.begin_link("google", account_id=v),
    "begin_link.return_to": lambda w, v: w.auth.begin_link(
        "microsoft", account_id=w.admin_id, return_to=v
    ),
    "complete.sealed_flow": lambda w, v: w.auth.complete(
        sealed_flow=v, params=w.begin("google")[1]
    ),
    "complete.params": lambda w, v: w.auth.complete(sealed_flow=w.begin("google")[0], params=v),
    "complete.signed_in_account_id": lambda w, v: w.auth.complete(
        sealed_flow=(flow := w.begin("google"))[0], params=flow[1], signed_in_account_id=v
    ),
    "unlink.provider": lambda w, v: w.auth.unlink(w.admin_id, v),
    "unlink.account_id": lambda w, v: w.auth.unlink(v, "google"),
    "get_account": lambda w, v: w.auth.get_account(v),
    "sign_in_methods": lambda w, v: w.auth.sign_in_methods(v),
    "sessions.account": lambda w, v: w.auth.sessions.account(v),
    # The session forms: the callback's parameters are the request's; the session's
    # values are the app's (signed cookies), but a mangled one must not escape either.
    "complete.session.params": lambda w, v: w.auth.complete(v, session=w.session_with_flow()),
    "complete.session.flows": lambda w, v: w.auth.complete(
        {"state": "s", "code": "c"}, session={FLOWS_KEY: v}
    ),
    "sessions.current.stamp": lambda w, v: w.auth.sessions.current({ACCOUNT_KEY: v}),
    "sessions.referring_page": lambda w, v: w.auth.sessions.referring_page(v),
    "begin_link.session.stamp": lambda w, v: w.auth.begin_link("google", session={ACCOUNT_KEY: v}),
    "sessions.cross_origin_refused.method": lambda w, v: w.auth.sessions.cross_origin_refused(
        v, {"Origin": "https://backoffice.test"}
    ),
    "sessions.cross_origin_refused.headers": lambda w, v: w.auth.sessions.cross_origin_refused(
        "POST", {"Origin": v, "Sec-Fetch-Site": v}
    ),
}

# Callback parameters, one at a time, over a real flow of each provider.
CALLBACK_KEYS = ["state", "code", "iss", "error", "error_description", "admin_consent", "tenant"]

# Entry points whose success uses up the invitation or reset token of the world.
USING_UP = ("invites.accept.", "complete_reset.")

SLOW = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("entry_point", sorted(ENTRY_POINTS))
@SLOW
@given(value=hostile)
def test_any_value_at_each_entry_point(world, entry_point, value):
    if entry_point.startswith(USING_UP):
        world.renew()
    only_auth_errors(world, lambda: ENTRY_POINTS[entry_point](world, value))


VALID = {
    "email": lambda _: "boss@example.com",
    "invite_token": lambda w: w.invite_token,
    "reset_token": lambda w: w.reset_token,
    "account_id": lambda w: w.admin_id,
    "password": lambda _: PASSWORD,
}
MUTATED_AT = {
    "email": ["sign_in.email", "begin_reset.email", "invites.create.email"],
    "invite_token": ["invites.check.token", "invites.accept.token", "invites.begin_accept.token"],
    "reset_token": ["complete_reset.token"],
    "account_id": [
        "change.account_id",
        "begin_link.account_id",
        "get_account",
        "unlink.account_id",
    ],
    "password": ["sign_in.password", "change.current"],
}


@pytest.mark.parametrize(
    ("kind", "entry_point"),
    [(kind, entry) for kind, entries in sorted(MUTATED_AT.items()) for entry in entries],
)
@SLOW
@given(data=st.data())
def test_mutated_valid_values(world, kind, entry_point, data):
    value = data.draw(mutated(VALID[kind](world)))
    only_auth_errors(world, lambda: ENTRY_POINTS[entry_point](world, value))


@pytest.mark.parametrize("provider", ["google", "microsoft"])
@pytest.mark.parametrize("key", CALLBACK_KEYS)
@SLOW
@given(data=st.data())
def test_callback_parameter(world, provider, key, data):
    state, params = world.begin(provider)
    valid = params.get(key, "")
    params = {**params, key: data.draw(st.one_of(hostile, mutated(valid or "x")))}
    only_auth_errors(world, lambda: world.auth.complete(sealed_flow=state, params=params))


@SLOW
@given(data=st.data())
def test_mutated_sealed_state(world, data):
    state, params = world.begin("google")
    forged = data.draw(mutated(state))
    only_auth_errors(world, lambda: world.auth.complete(sealed_flow=forged, params=params))


def test_the_world_is_usable(world):
    """The fixture's valid values work, so the properties above start from real ones."""
    state, params = world.begin("google")
    outcome = world.auth.complete(sealed_flow=state, params=params)
    assert outcome.kind == "signed_in"
    assert outcome.account.id == world.admin_id
    assert world.auth.invites.check(world.invite_token).email == "manager@example.com"
