"""Invitations and linking through Auth, on FakeGoogle and FakeMicrosoft."""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

import pytest

from bpart_auth import (
    AccountNotFound,
    Auth,
    EmailAlreadyRegistered,
    EmailNotVerified,
    Identity,
    IdentityAlreadyLinked,
    InvalidEmail,
    InvalidFlowState,
    InvalidInput,
    InvalidInvite,
    InviteAlreadyUsed,
    InviteEmailMismatch,
    InviteExpired,
    InviteRevoked,
    LastSignInMethod,
    MemoryStore,
)
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeMicrosoft
from bpart_auth.testing.store_contract import race
from conftest import Clock

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"
PASSWORD = "correct horse battery staple"
WORK = FakeMicrosoft.WORK_TENANT
OID = "aaaaaaaa-0000-0000-0000-000000000042"


@pytest.fixture
def google(fakes):
    return fakes[0]


@pytest.fixture
def microsoft(fakes):
    return fakes[1]


@pytest.fixture
def store():
    return MemoryStore()


@pytest.fixture
def clock():
    return Clock()


def make_auth(store, google, microsoft, clock, **settings):
    return Auth(
        store,
        secret_key=SECRET,
        providers=[google.provider(), microsoft.provider()],
        password_hashing=CHEAP_FOR_TESTS,
        clock=clock,
        **settings,
    )


@pytest.fixture
def auth(store, google, microsoft, clock, facade):
    return facade(make_auth(store, google, microsoft, clock))


@pytest.fixture
def admin(auth):
    return auth.create_account(email="boss@example.com", password=PASSWORD)


def state_of(start):
    return dict(parse_qsl(urlsplit(start.url).query))["state"]


def via_microsoft(auth, microsoft, start, **user):
    user.setdefault("oid", OID)
    return auth.complete(
        sealed_flow=start.sealed_flow, params=microsoft.authorize(start.url, **user)
    )


def via_google(auth, google, start, **user):
    return auth.complete(sealed_flow=start.sealed_flow, params=google.authorize(start.url, **user))


def test_invite_then_accept_with_microsoft_then_sign_in(auth, microsoft, admin, store):
    invite, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    assert auth.invites.check(token) == invite
    start = auth.invites.begin_accept("microsoft", token, redirect_uri=CALLBACK, return_to="/")
    # The Microsoft account's email differs: for Microsoft the token is the proof.
    outcome = via_microsoft(auth, microsoft, start, email="ann@contoso.example")
    assert outcome.kind == "registered"
    assert outcome.account.email == "ann@example.com"
    assert not outcome.account.has_password
    assert outcome.identity == Identity("microsoft", WORK, OID)
    assert outcome.return_to == "/"
    assert store.find_invite(invite_hash(token)).account_id == outcome.account.id
    # Signed out; later, signing in with Microsoft works.
    again = via_microsoft(auth, microsoft, auth.begin_sign_in("microsoft", redirect_uri=CALLBACK))
    assert (again.kind, again.account.id) == ("signed_in", outcome.account.id)


def invite_hash(token):
    from bpart_auth._tokens import token_hash  # noqa: PLC0415

    return token_hash(token, purpose="invite")


def test_accept_with_password_then_link_microsoft_then_sign_in(auth, google, microsoft, admin):
    _, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    ann = auth.invites.accept_with_password(token, password=PASSWORD, name="Ann")
    assert (ann.email, ann.name) == ("ann@example.com", "Ann")
    assert auth.passwords.sign_in("ann@example.com", PASSWORD).id == ann.id

    start = auth.begin_link("microsoft", account_id=ann.id, redirect_uri=CALLBACK)
    linked = auth.complete(
        sealed_flow=start.sealed_flow,
        params=microsoft.authorize(start.url, oid=OID),
        signed_in_account_id=ann.id,
    )
    assert (linked.kind, linked.account.id) == ("linked", ann.id)
    assert linked.message.startswith("Your Microsoft account is now linked.")
    assert linked.account.credentials_changed_at >= ann.credentials_changed_at

    signed_in = via_microsoft(
        auth, microsoft, auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    )
    assert signed_in.account.id == ann.id
    by_google = via_google(
        auth, google, auth.begin_sign_in("google", redirect_uri=CALLBACK), email="ann@example.com"
    )
    assert by_google.account.id == ann.id
    methods = auth.sign_in_methods(ann.id)
    assert methods.password
    assert methods.providers == {"microsoft", "google"}
    assert methods.can_unlink("microsoft")


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        pytest.param("forged", InvalidInvite, id="forged"),
        pytest.param("expired", InviteExpired, id="expired"),
        pytest.param("revoked", InviteRevoked, id="revoked"),
        pytest.param("used", InviteAlreadyUsed, id="used"),
        pytest.param("resent", InvalidInvite, id="replaced-by-resend"),
    ],
)
def test_unusable_invite_tokens_are_refused(auth, admin, clock, setup, error):
    invite, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    if setup == "forged":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif setup == "expired":
        clock.now += timedelta(days=7)
    elif setup == "revoked":
        auth.invites.revoke(invite.id)
    elif setup == "used":
        auth.invites.accept_with_password(token, password=PASSWORD)
    elif setup == "resent":
        auth.invites.resend(invite.id)
    with pytest.raises(error) as caught:
        auth.invites.accept_with_password(token, password="another long password here")
    assert caught.value.code == error.code
    with pytest.raises(error):
        auth.invites.begin_accept("microsoft", token, redirect_uri=CALLBACK)


MALFORMED_TOKENS = [
    pytest.param(lambda token: token + "\ud800", id="lone-surrogate"),
    pytest.param(lambda _token: "\udfff" * 43, id="only-surrogates"),
    pytest.param(lambda token: token * 3, id="over-128-characters"),
    pytest.param(lambda _token: "a" + "\u0301" * 500_000, id="1-mb"),
    pytest.param(lambda token: token.encode(), id="bytes"),
    pytest.param(lambda _token: None, id="none"),
    pytest.param(lambda token: [token], id="list"),
    pytest.param(lambda _token: "", id="empty"),
]


@pytest.mark.parametrize("malformed", MALFORMED_TOKENS)
def test_a_malformed_invite_token_is_an_invalid_invite_everywhere(auth, admin, store, malformed):
    invite, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    bad = malformed(token)
    for attempt in (
        lambda: auth.invites.check(bad),
        lambda: auth.invites.accept_with_password(bad, password=PASSWORD),
        lambda: auth.invites.begin_accept("microsoft", bad, redirect_uri=CALLBACK),
    ):
        with pytest.raises(InvalidInvite) as caught:
            attempt()
        assert caught.value.code == "invite_invalid"
    assert store.find_account_by_email("ann@example.com") is None
    assert auth.invites.check(token) == invite  # the real token still works


def test_inviting_an_existing_account_is_refused(auth, admin):
    with pytest.raises(EmailAlreadyRegistered):
        auth.invites.create("BOSS@example.com", invited_by=admin.id)


def test_resend_and_pending(auth, admin):
    first, old_token = auth.invites.create("ann@example.com", invited_by=admin.id)
    other, _ = auth.invites.create("bob@example.com", invited_by=admin.id)
    renewed, new_token = auth.invites.resend(first.id)
    assert new_token != old_token
    assert {i.id for i in auth.invites.pending()} == {other.id, renewed.id}
    assert auth.invites.accept_with_password(new_token, password=PASSWORD).email == (
        "ann@example.com"
    )


def test_google_acceptance_needs_the_invited_verified_email(auth, google, admin):
    _, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    start = auth.invites.begin_accept("google", token, redirect_uri=CALLBACK)
    with pytest.raises(InviteEmailMismatch):
        via_google(auth, google, start, email="someone.else@example.com")
    start = auth.invites.begin_accept("google", token, redirect_uri=CALLBACK)
    with pytest.raises(EmailNotVerified):
        via_google(auth, google, start, email="ann@example.com", email_verified=False)
    start = auth.invites.begin_accept("google", token, redirect_uri=CALLBACK)
    outcome = via_google(auth, google, start, email="Ann@Example.com")
    assert (outcome.kind, outcome.account.email) == ("registered", "ann@example.com")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        pytest.param("Ann Smith", "Ann Smith", id="plain"),
        pytest.param("Ann\u202eSmith", "AnnSmith", id="bidi-override-dropped"),
        pytest.param("\u2067Ann\u2069 Smith", "Ann Smith", id="isolates-dropped"),
        pytest.param("Ann\nSmith\t(IT)", "Ann Smith (IT)", id="control-white-space-to-space"),
        pytest.param("Ann\x00\x1b[2JSmith", "Ann[2JSmith", id="nul-and-escape-dropped"),
        pytest.param("Ann\u200b\ufeffSmith", "AnnSmith", id="invisible-dropped"),
        pytest.param("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", None, id="zwnj-kept"),
        pytest.param("x" * 1_000, "x" * 200, id="over-long-cut"),
        # A claim over 1024 characters is no name at all (the providers' claim bound).
        pytest.param("x" * 5_000, "", id="far-too-long-dropped"),
        pytest.param(" " + "\u202e" * 1_000 + "Ann", "", id="only-junk-in-the-first-1000"),
    ],
)
@pytest.mark.parametrize("provider", ["microsoft", "google"])
def test_a_name_from_the_provider_is_cleaned_not_refused(
    auth, google, microsoft, admin, provider, sent, stored
):
    _, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    start = auth.invites.begin_accept(provider, token, redirect_uri=CALLBACK)
    if provider == "google":
        outcome = via_google(auth, google, start, email="ann@example.com", name=sent)
    else:
        outcome = via_microsoft(auth, microsoft, start, name=sent)
    assert outcome.kind == "registered"
    assert outcome.account.name == (sent if stored is None else stored)
    assert auth.get_account(outcome.account.id).name == outcome.account.name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("Ann\u202eSmith", id="bidi-override"),
        pytest.param("Ann\nSmith", id="control-character"),
        pytest.param("x" * 201, id="over-long"),
    ],
)
def test_a_typed_name_is_refused_and_the_invite_stays_usable(auth, admin, name):
    invite, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    with pytest.raises(InvalidInput) as caught:
        auth.invites.accept_with_password(token, password=PASSWORD, name=name)
    assert (caught.value.code, caught.value.field) == ("invalid_input", "name")
    assert auth.invites.check(token) == invite
    assert auth.invites.accept_with_password(token, password=PASSWORD, name="Ann").name == "Ann"


@pytest.mark.parametrize(
    "email",
    [
        pytest.param("ann@example.com.", id="trailing-dot"),
        pytest.param("<script>alert(1)</script>@example.com", id="script-tag"),
        pytest.param('"ann"@example.com', id="quoted"),
        pytest.param("ann@[192.0.2.1]", id="domain-literal"),
        pytest.param("a" * 1_000_000 + "@example.com", id="one-megabyte"),
    ],
)
def test_an_invitation_to_a_refused_address_is_not_created(auth, admin, email):
    with pytest.raises(InvalidEmail) as caught:
        auth.invites.create(email, invited_by=admin.id)
    assert caught.value.code == "invalid_email"
    assert list(auth.invites.pending()) == []


def test_an_invitation_shows_its_address_in_unicode(auth, admin):
    invite, token = auth.invites.create("Zoë@Bücher.example", invited_by=admin.id)
    assert (invite.email, invite.display_email) == (
        "zoë@xn--bcher-kva.example",
        "zoë@bücher.example",
    )
    account = auth.invites.accept_with_password(token, password=PASSWORD)
    assert (account.email, account.display_email) == (invite.email, invite.display_email)


@pytest.mark.parametrize(
    ("user", "code"),
    [
        pytest.param({"email": "ann@example.com"}, None, id="same-email"),
        pytest.param({"email": "Ann@EXAMPLE.com"}, None, id="same-email-other-case"),
        pytest.param({"email": "ann@contoso.example"}, "invite_email_mismatch", id="other-email"),
        pytest.param({"email": None}, "invite_email_mismatch", id="no-email-claim"),
        pytest.param(
            {"claims": {"email": ["ann@example.com"]}}, "invite_email_mismatch", id="email-a-list"
        ),
        pytest.param(
            {"claims": {"email": "ann@example.com", "email_verified": False}},
            None,
            id="entra-verifies-no-email-so-no-flag-is-needed",
        ),
    ],
)
def test_microsoft_email_match_is_a_consistency_check(store, google, microsoft, clock, user, code):
    auth = make_auth(
        store, google, microsoft, clock, invite_email_must_match=("google", "microsoft")
    )
    invite, token = auth.invites.create("ann@example.com")
    start = auth.invites.begin_accept("microsoft", token, redirect_uri=CALLBACK)
    if code is None:
        outcome = via_microsoft(auth, microsoft, start, **user)
        assert (outcome.kind, outcome.account.email) == ("registered", "ann@example.com")
        assert outcome.identity == Identity("microsoft", WORK, OID)
    else:
        with pytest.raises(InviteEmailMismatch) as caught:
            via_microsoft(auth, microsoft, start, **user)
        assert caught.value.code == code
        assert store.find_account_by_email("ann@example.com") is None
        assert auth.invites.check(token).id == invite.id


def test_accepting_with_an_identity_linked_elsewhere_keeps_the_invite(
    auth, microsoft, admin, store
):
    store.link_identity(
        account_id=admin.id,
        identity=Identity("microsoft", WORK, OID),
        email=None,
        now=admin.created_at,
    )
    invite, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    start = auth.invites.begin_accept("microsoft", token, redirect_uri=CALLBACK)
    with pytest.raises(IdentityAlreadyLinked):
        via_microsoft(auth, microsoft, start)
    assert store.find_account_by_email("ann@example.com") is None
    assert auth.invites.check(token).id == invite.id
    assert auth.invites.accept_with_password(token, password=PASSWORD).email == "ann@example.com"


def test_linking_an_identity_of_another_account_changes_nothing(auth, microsoft, admin, store):
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    store.link_identity(
        account_id=admin.id,
        identity=Identity("microsoft", WORK, OID),
        email=None,
        now=admin.created_at,
    )
    before = store.get_account(ann.id)
    start = auth.begin_link("microsoft", account_id=ann.id, redirect_uri=CALLBACK)
    with pytest.raises(IdentityAlreadyLinked):
        via_microsoft(auth, microsoft, start)
    assert store.get_account(ann.id) == before
    assert list(store.list_identities(ann.id)) == []
    assert store.find_account_by_identity(Identity("microsoft", WORK, OID)).id == admin.id


def test_relinking_the_same_identity_is_a_quiet_success(auth, microsoft, admin):
    for _ in range(2):
        start = auth.begin_link("microsoft", account_id=admin.id, redirect_uri=CALLBACK)
        outcome = via_microsoft(auth, microsoft, start)
        assert (outcome.kind, outcome.account.id) == ("linked", admin.id)
    assert len(auth.sign_in_methods(admin.id).identities) == 1


def test_a_link_flow_never_completes_for_another_account(auth, microsoft, admin, store):
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    start = auth.begin_link("microsoft", account_id=admin.id, redirect_uri=CALLBACK)
    with pytest.raises(InvalidFlowState):
        auth.complete(
            sealed_flow=start.sealed_flow,
            params=microsoft.authorize(start.url, oid=OID),
            signed_in_account_id=ann.id,
        )
    assert list(store.list_identities(ann.id)) == []
    assert list(store.list_identities(admin.id)) == []


def test_unlink_returns_the_account_with_its_credentials_changed(auth, microsoft, admin, clock):
    linked = via_microsoft(
        auth, microsoft, auth.begin_link("microsoft", account_id=admin.id, redirect_uri=CALLBACK)
    ).account
    removed = []
    auth.on("unlinked", removed.append)
    clock.now += timedelta(seconds=5)
    account = auth.unlink(admin.id, "microsoft")
    assert account == auth.get_account(admin.id)
    assert account.credentials_changed_at == clock.now > linked.credentials_changed_at
    assert [event.identity for event in removed] == [Identity("microsoft", WORK, OID)]
    assert auth.sign_in_methods(admin.id).providers == frozenset()
    # The stamp of the returned account keeps this session; older stamps end theirs.
    assert auth.sessions.account(auth.sessions.stamp(account)) == account
    assert auth.sessions.account(auth.sessions.stamp(linked)) is None

    clock.now += timedelta(seconds=5)  # nothing left to unlink: nothing changes
    assert auth.unlink(admin.id, "microsoft") == account
    assert len(removed) == 1


def test_unlink_for_an_unknown_account(auth):
    with pytest.raises(AccountNotFound):
        auth.unlink("no-such-account", "google")


def test_unlinking_the_last_method_is_refused(auth, microsoft, admin):
    _, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    start = auth.invites.begin_accept("microsoft", token, redirect_uri=CALLBACK)
    ann = via_microsoft(auth, microsoft, start).account
    methods = auth.sign_in_methods(ann.id)
    assert (methods.password, methods.can_unlink("microsoft")) == (False, False)
    with pytest.raises(LastSignInMethod):
        auth.unlink(ann.id, "microsoft")
    assert auth.sign_in_methods(ann.id).providers == {"microsoft"}


def test_events_are_reported_and_a_failing_callback_changes_nothing(auth, microsoft, admin, caplog):
    seen = []
    for kind in (
        "signed_in",
        "linked",
        "unlinked",
        "invite_created",
        "invite_accepted",
        "password_changed",
    ):
        auth.on(kind, seen.append)

    def broken(event):
        raise RuntimeError("mail server down")

    auth.on("invite_accepted", broken)
    _, token = auth.invites.create("ann@example.com", invited_by=admin.id)
    with caplog.at_level(logging.ERROR, logger="bpart_auth.events"):
        ann = auth.invites.accept_with_password(token, password=PASSWORD)
    assert "invite_accepted callback failed" in caplog.text
    assert auth.get_account(ann.id).email == "ann@example.com"
    auth.passwords.sign_in("ann@example.com", PASSWORD)
    via_microsoft(
        auth, microsoft, auth.begin_link("microsoft", account_id=ann.id, redirect_uri=CALLBACK)
    )
    auth.unlink(ann.id, "microsoft")
    auth.passwords.change(ann.id, current=PASSWORD, new="a brand new long password")
    kinds = [(event.kind, event.account.id if event.account else None) for event in seen]
    assert kinds == [
        ("invite_created", admin.id),
        ("invite_accepted", ann.id),
        ("signed_in", ann.id),
        ("linked", ann.id),
        ("unlinked", ann.id),
        ("password_changed", ann.id),
    ]
    assert seen[1].invite.account_id == ann.id
    assert seen[3].identity == Identity("microsoft", WORK, OID)


def test_unknown_event_kind(auth):
    from bpart_auth import ConfigurationError  # noqa: PLC0415

    with pytest.raises(ConfigurationError):
        auth.on("signed_out", print)


@pytest.mark.parametrize(
    "backend", ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_fifty_concurrent_acceptances_make_one_account(request, google, microsoft, clock, backend):
    if backend == "memory":
        store = MemoryStore()
    else:
        store = request.getfixturevalue(f"{backend}_db").store(create_schema=True)
    auth = make_auth(store, google, microsoft, clock)
    _, token = auth.invites.create("ann@example.com")
    callbacks = []
    for index in range(25):
        start = auth.invites.begin_accept("microsoft", token, redirect_uri=CALLBACK)
        oid = f"aaaaaaaa-0000-0000-0000-{index:012d}"
        callbacks.append((start.sealed_flow, microsoft.authorize(start.url, oid=oid)))

    def accept(index):
        if index % 2:
            return auth.invites.accept_with_password(token, password=PASSWORD)
        state, params = callbacks[index // 2]
        return auth.complete(sealed_flow=state, params=params).account

    outcomes = race(50, accept)
    winners = [o for o in outcomes if not isinstance(o, BaseException)]
    losers = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(winners) == 1, losers[:3]
    assert all(isinstance(o, InvalidInvite) for o in losers), losers[:3]
    assert store.find_account_by_email("ann@example.com").id == winners[0].id
