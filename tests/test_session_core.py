"""The app's session in the core: `session=` on begin/complete, and `auth.sessions`."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from bpart_auth import (
    AccountDisabled,
    Auth,
    ConfigurationError,
    InvalidFlowState,
    MemoryStore,
    SignInRequired,
)
from bpart_auth.services.sessions import ACCOUNT_KEY, FLOWS_KEY, MAX_PENDING_FLOWS
from bpart_auth.testing import CHEAP_FOR_TESTS
from conftest import Clock

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"
PASSWORD = "correct horse battery staple"


class DjangoLikeSession(dict):
    """A session with a server-side key, as Django's: `cycle_key` and `flush`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key = "key-known-to-an-attacker"
        self.cycles = 0

    def cycle_key(self):
        self.cycles += 1
        self.key = f"fresh-key-{self.cycles}"

    def flush(self):
        self.clear()
        self.cycle_key()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def auth(fakes, clock, facade):
    google, microsoft = fakes
    return facade(
        Auth(
            MemoryStore(),
            secret_key=SECRET,
            providers=[google.provider(), microsoft.provider()],
            password_hashing=CHEAP_FOR_TESTS,
            redirect_uri=CALLBACK,
            clock=clock,
        )
    )


@pytest.fixture
def ann(auth):
    return auth.create_account(email="ann@example.com", password=PASSWORD)


def signed_in(auth, account):
    session = {}
    auth.sessions.sign_in(session, account)
    return session


# Signing in, the current account, signing out


def test_a_session_planted_before_sign_in_does_not_survive_it(auth, ann):
    session = DjangoLikeSession({"planted": "by an attacker", ACCOUNT_KEY: "forged stamp"})
    auth.sessions.sign_in(session, ann)
    assert session == {ACCOUNT_KEY: auth.sessions.stamp(ann)}
    assert session.key != "key-known-to-an-attacker"
    assert auth.sessions.current(session) == ann


def test_a_session_planted_before_a_provider_sign_in_does_not_survive_it(auth, ann, fakes):
    google, _ = fakes
    session = DjangoLikeSession({"planted": "by an attacker"})
    start = auth.begin_sign_in("google", session=session)
    outcome = auth.complete(google.authorize(start.url, email="ann@example.com"), session=session)
    assert outcome.kind == "signed_in"
    assert session == {ACCOUNT_KEY: auth.sessions.stamp(ann)}
    assert session.key != "key-known-to-an-attacker"


def test_a_session_ends_on_its_next_request_after_a_password_change_elsewhere(auth, ann, clock):
    here, elsewhere = signed_in(auth, ann), signed_in(auth, ann)
    clock.now += timedelta(seconds=1)
    changed = auth.passwords.change(ann.id, current=PASSWORD, new="another long passphrase")
    auth.sessions.refresh(here, changed)
    assert auth.sessions.current(here) == changed
    assert auth.sessions.current(elsewhere) is None
    assert elsewhere == {}  # ended: nothing of it is left


@pytest.mark.parametrize("change", ["disable", "delete-stamp-account"])
def test_a_session_ends_when_its_account_is_disabled_or_gone(auth, ann, change):
    session = signed_in(auth, ann)
    session["cart"] = "something of the app's"
    if change == "disable":
        auth.disable_account(ann.id)
    else:
        session[ACCOUNT_KEY] = session[ACCOUNT_KEY].replace(ann.id, "no-such-account")
    assert auth.sessions.current(session) is None
    assert session == {}


@pytest.mark.parametrize(
    "stamp", [None, "", 42, ["a", "list"], "no-time-here", "x" * 5000, "\ud800 id"]
)
def test_a_malformed_stamp_is_no_account(auth, stamp):
    session = {ACCOUNT_KEY: stamp} if stamp is not None else {}
    assert auth.sessions.current(session) is None


def test_sign_out_drops_everything_and_flushes_a_server_side_session(auth, ann):
    session = DjangoLikeSession()
    auth.sessions.sign_in(session, ann)
    auth.begin_sign_in("google", session=session)
    auth.sessions.sign_out(session)
    assert session == {}
    assert session.cycles == 2  # sign-in, then the flush


def test_a_disabled_account_is_not_signed_in(auth, ann):
    disabled = auth.disable_account(ann.id)
    session = {"kept": "yes"}
    with pytest.raises(AccountDisabled):
        auth.sessions.sign_in(session, disabled)
    assert session == {"kept": "yes"}


def test_refresh_never_signs_anyone_in(auth, ann):
    bob = auth.create_account(email="bob@example.com", password=PASSWORD)
    anonymous, bobs = {}, signed_in(auth, bob)
    auth.sessions.refresh(anonymous, ann)
    auth.sessions.refresh(bobs, ann)
    assert anonymous == {}
    assert auth.sessions.current(bobs) == bob


# Flows kept in the session


def test_two_tabs_each_finish_their_own_flow(auth, ann, fakes):
    google, microsoft = fakes
    session = signed_in(auth, ann)
    link_tab = auth.begin_link("microsoft", session=session)
    other_tab = auth.begin_link("google", session=session)
    assert [flow[0] for flow in session[FLOWS_KEY]] == [link_tab.state, other_tab.state]
    # The later tab finishes first; the earlier one still can.
    first = auth.complete(google.authorize(other_tab.url, email="ann@example.com"), session=session)
    second = auth.complete(microsoft.authorize(link_tab.url, oid="oid-ann"), session=session)
    assert (first.kind, second.kind) == ("linked", "linked")
    assert set(auth.sign_in_methods(ann.id).providers) == {"google", "microsoft"}
    assert auth.sessions.current(session) == second.account  # still signed in, newest stamp
    assert FLOWS_KEY not in session


def test_two_anonymous_tabs_sign_in_with_google_and_microsoft(auth, ann, fakes):
    google, microsoft = fakes
    auth.complete(
        microsoft.authorize(
            (start := auth.begin_link("microsoft", account_id=ann.id)).url, oid="oid-ann"
        ),
        sealed_flow=start.sealed_flow,
    )
    session = {}
    google_tab = auth.begin_sign_in("google", session=session)
    microsoft_tab = auth.begin_sign_in("microsoft", session=session)
    outcome = auth.complete(microsoft.authorize(microsoft_tab.url, oid="oid-ann"), session=session)
    assert outcome.kind == "signed_in"
    # Signing in starts a fresh session: the other tab's flow went with the old one.
    with pytest.raises(InvalidFlowState):
        auth.complete(google.authorize(google_tab.url, email="ann@example.com"), session=session)
    assert auth.sessions.current(session) == auth.get_account(ann.id)


def test_a_flow_begun_in_one_session_cannot_be_completed_in_another(auth, ann, fakes):
    google, _ = fakes
    victim, attacker = {}, {}
    start = auth.begin_sign_in("google", session=attacker)
    params = google.authorize(start.url, email="ann@example.com")
    with pytest.raises(InvalidFlowState):
        auth.complete(params, session=victim)
    assert victim == {}
    assert auth.complete(params, session=attacker).account.id == ann.id


def test_a_link_flow_completes_only_while_its_account_is_signed_in(auth, ann, fakes):
    _, microsoft = fakes
    bob = auth.create_account(email="bob@example.com", password=PASSWORD)
    session = signed_in(auth, ann)
    start = auth.begin_link("microsoft", session=session)
    # Another sign-in in the same browser replaces the session, and its flows.
    auth.sessions.sign_in(session, bob)
    session[FLOWS_KEY] = [[start.state, start.sealed_flow, 2**40]]  # even if kept on purpose
    with pytest.raises(InvalidFlowState):
        auth.complete(microsoft.authorize(start.url, oid="oid-x"), session=session)
    assert auth.sign_in_methods(bob.id).identities == ()
    assert auth.sign_in_methods(ann.id).identities == ()


def test_a_replayed_callback_is_refused(auth, ann, fakes):
    google, _ = fakes
    session = {}
    start = auth.begin_sign_in("google", session=session)
    params = google.authorize(start.url, email="ann@example.com")
    auth.complete(params, session=session)
    with pytest.raises(InvalidFlowState):
        auth.complete(params, session=session)


def test_the_oldest_flow_is_dropped_past_the_bound(auth, fakes):
    session = {}
    starts = [auth.begin_sign_in("google", session=session) for _ in range(MAX_PENDING_FLOWS + 1)]
    assert [flow[0] for flow in session[FLOWS_KEY]] == [s.state for s in starts[1:]]
    google, _ = fakes
    with pytest.raises(InvalidFlowState):
        auth.complete(google.authorize(starts[0].url, email="x@example.com"), session=session)


def test_expired_flows_are_dropped_first(auth, clock):
    session = {}
    old = auth.begin_sign_in("google", session=session)
    clock.now += timedelta(minutes=11)
    fresh = auth.begin_sign_in("microsoft", session=session)
    assert [flow[0] for flow in session[FLOWS_KEY]] == [fresh.state]
    assert old.state != fresh.state


def test_a_session_cookie_with_three_flows_fits_in_4_kb(auth, ann):
    session = signed_in(auth, ann)
    for provider in ("microsoft", "microsoft", "google"):
        auth.begin_link(provider, session=session, return_to="/profile")
    # Flask and Starlette sign a base64 of the JSON; the browser keeps 4096 bytes.
    encoded = base64.urlsafe_b64encode(json.dumps(session).encode())
    assert len(encoded) < 3600


def test_begin_link_with_a_session_needs_a_signed_in_account(auth, ann):
    with pytest.raises(SignInRequired):
        auth.begin_link("google", session={})
    bob = auth.create_account(email="bob@example.com", password=PASSWORD)
    with pytest.raises(ConfigurationError):
        auth.begin_link("google", session=signed_in(auth, ann), account_id=bob.id)
    with pytest.raises(ConfigurationError):
        auth.begin_link("google")


def test_an_invitation_accepted_through_the_session_signs_the_new_account_in(auth, ann, fakes):
    _, microsoft = fakes
    _, token = auth.invites.create("bob@example.com", invited_by=ann.id)
    session = signed_in(auth, ann)  # someone else's session in this browser
    start = auth.invites.begin_accept("microsoft", token, session=session)
    outcome = auth.complete(
        microsoft.authorize(start.url, email="bob@example.com"), session=session
    )
    assert outcome.kind == "registered"
    assert auth.sessions.current(session) == outcome.account


def test_session_and_sealed_flow_together_is_a_configuration_error(auth):
    session = {}
    start = auth.begin_sign_in("google", session=session)
    with pytest.raises(ConfigurationError):
        auth.complete({"state": start.state}, session=session, sealed_flow=start.sealed_flow)


@pytest.mark.parametrize(
    "flows",
    [
        "not a list",
        [["state"]],
        [[1, 2, 3]],
        [None],
        {"a": "dict"},
        [["s", "v1.x", "not an int"]],
    ],
)
def test_malformed_flows_in_the_session_are_no_flows(auth, flows):
    session = {FLOWS_KEY: flows}
    with pytest.raises(InvalidFlowState):
        auth.complete({"state": "s", "code": "c"}, session=session)
    start = auth.begin_sign_in("google", session=session)
    assert session[FLOWS_KEY] == [[start.state, start.sealed_flow, session[FLOWS_KEY][0][2]]]


@pytest.mark.parametrize(
    "params",
    [
        {"state": "x" * 20000, "code": "c"},
        {"state": ["a", "b"], "code": "c"},
        {"code": "c"},
        {"state": "\ud800"},
        "state=s&code=c",
    ],
)
def test_a_hostile_callback_through_the_session_is_invalid_flow_state(auth, params):
    session = {}
    auth.begin_sign_in("google", session=session)
    with pytest.raises(InvalidFlowState):
        auth.complete(params, session=session)
    assert len(session[FLOWS_KEY]) == 1  # a bad callback takes no one's flow away


# Where a refused form goes back to


@pytest.mark.parametrize(
    ("referer", "page"),
    [
        ("https://backoffice.test/invite/abc", "/invite/abc"),
        ("https://backoffice.test/profile?tab=links", "/profile?tab=links"),
        ("https://BACKOFFICE.test:443/", "/"),
        ("https://backoffice.test", "/"),
        ("https://backoffice.test/page#part", "/page"),
        (" https://backoffice.test/x ", "/x"),
        ("https://evil.example/invite/abc", None),
        ("http://backoffice.test/invite/abc", None),  # another scheme: another origin
        ("https://backoffice.test:8443/x", None),
        ("https://backoffice.test.evil.example/x", None),
        ("https://backoffice.test//evil.example/x", None),
        ("https://backoffice.test/\\evil.example", None),
        ("https://backoffice.test/%2F%2Fevil.example", None),
        ("https://backoffice.test/%09/evil.example", None),
        ("/relative/only", None),
        ("javascript:alert(1)", None),
        ("https://[backoffice.test/x", None),
        ("https://backoffice.test/" + "x" * 3000, None),
        ("https://backoffice.test/\ud800", None),
        ("", None),
        (None, None),
        (b"https://backoffice.test/x", None),
        (["https://backoffice.test/x"], None),
    ],
)
def test_a_refused_form_goes_back_only_to_a_safe_page_of_the_app(auth, referer, page):
    assert auth.sessions.referring_page(referer) == page


def test_without_the_apps_origin_no_page_is_trusted():
    assert Auth(MemoryStore()).sessions.referring_page("https://backoffice.test/x") is None
