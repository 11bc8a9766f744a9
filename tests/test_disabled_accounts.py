"""A disabled account does nothing: every method refuses it, and nothing is written."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from sqlalchemy import select, update

from bpart_auth import (
    AccountDisabled,
    Auth,
    InvalidResetToken,
    InviteRevoked,
    MemoryStore,
)
from bpart_auth.store import _schema
from bpart_auth.store.sql import SQLStore
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft
from conftest import Clock

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"
EMAIL = "ann@example.com"
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a whole new sentence of words"
OID = "aaaaaaaa-0000-0000-0000-000000000042"


@dataclass
class World:
    """An `Auth` and its account `ann`: a password, Google and Microsoft linked."""

    auth: Auth
    store: MemoryStore | SQLStore
    google: FakeGoogle
    microsoft: FakeMicrosoft
    ann_id: str

    def complete(self, start, params):
        return self.auth.complete(sealed_flow=start.sealed_flow, params=params)


@pytest.fixture(params=["memory", "sqlite"])
def store(request):
    if request.param == "memory":
        return MemoryStore()
    return request.getfixturevalue("sqlite_db").store(create_schema=True)


@pytest.fixture
def world(store, fakes):
    google, microsoft = fakes
    auth = Auth(
        store,
        secret_key=SECRET,
        providers=[google.provider(), microsoft.provider()],
        redirect_uri=CALLBACK,
        password_hashing=CHEAP_FOR_TESTS,
        clock=Clock(),
    )
    ann = auth.create_account(email=EMAIL, password=PASSWORD, name="Ann")
    world = World(auth, store, google, microsoft, ann.id)
    start = auth.begin_link("google", account_id=ann.id)
    world.complete(start, google.authorize(start.url))
    start = auth.begin_link("microsoft", account_id=ann.id)
    world.complete(start, microsoft.authorize(start.url, oid=OID))
    return world


def snapshot(store):
    """Everything the store keeps, but the flow states used once (a callback uses its own)."""
    if isinstance(store, MemoryStore):
        return {
            name: copy.deepcopy(value)
            for name, value in vars(store).items()
            if isinstance(value, dict) and name != "_used_once"
        }
    with store._engine.connect() as connection:
        return {
            table.name: sorted(tuple(map(str, row)) for row in connection.execute(select(table)))
            for table in _schema.metadata.sorted_tables
            if table is not _schema.used_once
        }


# Each row: what to prepare while the account is enabled, what to try once it is
# disabled, and the outcome: an error code, or a return value.


def nothing(w):
    return None


def sign_in_start(provider):
    return lambda w: w.auth.begin_sign_in(provider)


def google_start_without_google_linked(w):
    w.auth.unlink(w.ann_id, "google")
    return w.auth.begin_sign_in("google")


def link_start_without_google_linked(w):
    w.auth.unlink(w.ann_id, "google")
    return w.auth.begin_link("google", account_id=w.ann_id)


def reset_token(w):
    return w.auth.passwords.begin_reset(EMAIL)


def invitation_token(w):
    return w.auth.invites.create("bob@example.com", invited_by=w.ann_id)[1]


def accept_start(provider):
    return lambda w: w.auth.invites.begin_accept(provider, invitation_token(w))


def stamp(w):
    return w.auth.sessions.stamp(w.auth.get_account(w.ann_id))


def add_second_factor(w, _):
    return w.store.add_second_factor(
        account_id=w.ann_id,
        kind="passkey",
        name="Key",
        secret="{}",
        lookup_key="a2V5",
        now=datetime.now(timezone.utc),
    )


def new_recovery_codes(w, _):
    return w.store.replace_recovery_codes(
        w.ann_id, code_hashes=["0" * 64], now=datetime.now(timezone.utc)
    )


ROWS = [
    pytest.param(
        nothing,
        lambda w, _: w.auth.passwords.sign_in(EMAIL, PASSWORD),
        "account_disabled",
        id="password-sign-in",
    ),
    pytest.param(
        sign_in_start("google"),
        lambda w, start: w.complete(start, w.google.authorize(start.url)),
        "account_disabled",
        id="google-sign-in",
    ),
    pytest.param(
        google_start_without_google_linked,
        lambda w, start: w.complete(start, w.google.authorize(start.url, sub="google-new")),
        "account_disabled",
        id="google-sign-in-by-verified-email",
    ),
    pytest.param(
        sign_in_start("microsoft"),
        lambda w, start: w.complete(start, w.microsoft.authorize(start.url, oid=OID)),
        "account_disabled",
        id="microsoft-sign-in",
    ),
    pytest.param(
        nothing,
        lambda w, _: w.auth.passwords.change(w.ann_id, current=PASSWORD, new=NEW_PASSWORD),
        "account_disabled",
        id="password-change",
    ),
    pytest.param(
        nothing,
        lambda w, _: w.auth.passwords.begin_reset(EMAIL),
        None,
        id="begin-reset",
    ),
    pytest.param(
        # Disabling killed the token: it is as unknown as a forged one.
        reset_token,
        lambda w, token: w.auth.passwords.complete_reset(token, new_password=NEW_PASSWORD),
        "reset_token_invalid",
        id="complete-reset-with-a-token-from-before",
    ),
    pytest.param(
        nothing,
        lambda w, _: w.auth.begin_link("google", account_id=w.ann_id),
        "account_disabled",
        id="begin-link",
    ),
    pytest.param(
        link_start_without_google_linked,
        lambda w, start: w.complete(start, w.google.authorize(start.url, sub="google-new")),
        "account_disabled",
        id="link-callback-of-a-flow-from-before",
    ),
    pytest.param(
        nothing,
        lambda w, _: w.auth.invites.create("bob@example.com", invited_by=w.ann_id),
        "account_disabled",
        id="invite",
    ),
    pytest.param(
        invitation_token,
        lambda w, token: w.auth.invites.check(token),
        "invite_revoked",
        id="check-an-invitation-it-sent",
    ),
    pytest.param(
        invitation_token,
        lambda w, token: w.auth.invites.accept_with_password(token, password=PASSWORD),
        "invite_revoked",
        id="accept-its-invitation-with-a-password",
    ),
    pytest.param(
        invitation_token,
        lambda w, token: w.auth.invites.begin_accept("microsoft", token),
        "invite_revoked",
        id="begin-accepting-its-invitation",
    ),
    pytest.param(
        accept_start("microsoft"),
        lambda w, start: w.complete(start, w.microsoft.authorize(start.url, oid="bob-oid")),
        "invite_revoked",
        id="accept-its-invitation-with-microsoft",
    ),
    pytest.param(
        accept_start("google"),
        lambda w, start: w.complete(start, w.google.authorize(start.url, email="bob@example.com")),
        "invite_revoked",
        id="accept-its-invitation-with-google",
    ),
    pytest.param(
        stamp,
        lambda w, session_stamp: w.auth.sessions.account(session_stamp),
        None,
        id="session-stamp",
    ),
    # The store itself, below any service: no new way in, checked in its transaction.
    pytest.param(nothing, add_second_factor, "account_disabled", id="store-add-second-factor"),
    pytest.param(nothing, new_recovery_codes, "account_disabled", id="store-new-recovery-codes"),
]


@pytest.mark.parametrize(("prepare", "act", "outcome"), ROWS)
def test_a_disabled_account_does_nothing(world, prepare, act, outcome):
    prepared = prepare(world)
    world.auth.disable_account(world.ann_id)
    before = snapshot(world.store)
    if outcome is None:
        assert act(world, prepared) is None
    else:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - the code is asserted
            act(world, prepared)
        assert getattr(caught.value, "code", caught.value) == outcome
    assert snapshot(world.store) == before


def test_unlinking_still_works_on_a_disabled_account(world):
    # Unlinking only removes a way in: an administrator may take a compromised
    # identity off an account before enabling it again.
    world.auth.disable_account(world.ann_id)
    account = world.auth.unlink(world.ann_id, "microsoft")
    assert account.disabled
    assert world.auth.sign_in_methods(world.ann_id).providers == {"google"}
    start = world.auth.begin_sign_in("microsoft")
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the code is asserted
        world.complete(start, world.microsoft.authorize(start.url, oid=OID))
    assert getattr(caught.value, "code", None) == "identity_not_linked"


def test_enabling_again_restores_sign_in_and_nothing_that_died(world):
    before = world.store.find_password_hash(EMAIL)[1]
    token = world.auth.passwords.begin_reset(EMAIL)
    _, invitation = world.auth.invites.create("bob@example.com", invited_by=world.ann_id)
    world.auth.disable_account(world.ann_id)

    enabled = world.auth.enable_account(world.ann_id)

    assert not enabled.disabled
    assert world.auth.passwords.sign_in(EMAIL, PASSWORD).id == world.ann_id
    start = world.auth.begin_sign_in("microsoft")
    outcome = world.complete(start, world.microsoft.authorize(start.url, oid=OID))
    assert outcome.account.id == world.ann_id
    with pytest.raises(InvalidResetToken):
        world.auth.passwords.complete_reset(token, new_password=NEW_PASSWORD)
    with pytest.raises(InviteRevoked):
        world.auth.invites.check(invitation)
    assert world.auth.invites.pending() == []
    assert world.store.find_password_hash(EMAIL)[1] == before


class DisabledWhileReading(MemoryStore):
    """An administrator disables the account just after a service read it."""

    def find_account_by_email(self, email):
        account = super().find_account_by_email(email)
        if account is not None:
            self.update_account(account.id, disabled=True, now=datetime.now(timezone.utc))
        return account


def test_a_reset_begun_as_the_account_is_disabled_gives_no_token():
    store = DisabledWhileReading()
    auth = Auth(store, password_hashing=CHEAP_FOR_TESTS)
    auth.create_account(email=EMAIL, password=PASSWORD)
    assert auth.passwords.begin_reset(EMAIL) is None
    assert store._reset_tokens == {}


def _disable_as_an_older_version_did(store, account_id):
    """Set the flag alone, as bpart_auth did before disabling killed tokens and invites."""
    with store._engine.begin() as connection:
        connection.execute(
            update(_schema.accounts)
            .where(_schema.accounts.c.id == account_id)
            .values(disabled=True)
        )


def test_a_reset_token_that_outlived_the_disabling_is_refused(database):
    store = database.store(create_schema=True)
    auth = Auth(store, password_hashing=CHEAP_FOR_TESTS)
    ann = auth.create_account(email=EMAIL, password=PASSWORD)
    hash_before = store.find_password_hash(EMAIL)[1]
    token = auth.passwords.begin_reset(EMAIL)
    _disable_as_an_older_version_did(store, ann.id)
    with pytest.raises(AccountDisabled):
        auth.passwords.complete_reset(token, new_password=NEW_PASSWORD)
    from bpart_auth._tokens import token_hash  # noqa: PLC0415

    with pytest.raises(AccountDisabled):  # the store's own check, in its transaction
        store.complete_reset(
            token_hash=token_hash(token, purpose="password_reset"),
            password_hash="$argon2id$new",
            now=datetime.now(timezone.utc),
        )
    assert store.find_password_hash(EMAIL)[1] == hash_before


def test_an_invitation_that_outlived_its_inviter_is_refused(database):
    store = database.store(create_schema=True)
    auth = Auth(store, password_hashing=CHEAP_FOR_TESTS)
    boss = auth.create_account(email="boss@example.com", password=PASSWORD)
    _, token = auth.invites.create("bob@example.com", invited_by=boss.id)
    _disable_as_an_older_version_did(store, boss.id)
    with pytest.raises(InviteRevoked):
        auth.invites.accept_with_password(token, password=PASSWORD)
    assert store.find_account_by_email("bob@example.com") is None
