"""Second factors: enrolment, the pending second step in the session, codes used once."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path

import pytest

pyotp = pytest.importorskip("pyotp", reason="the `mfa` extra (pyotp) is not installed")

from bpart_auth import (  # noqa: E402
    AccountDisabled,
    Auth,
    InvalidSecondFactor,
    LastSecondFactor,
    MemoryStore,
    SignInRequired,
    TooManyAttempts,
)
from bpart_auth.services.second_factors import PENDING_KEY, SecondFactorPolicy  # noqa: E402
from bpart_auth.services.sessions import ACCOUNT_KEY  # noqa: E402
from bpart_auth.store.sql import SQLStore  # noqa: E402
from bpart_auth.testing import CHEAP_FOR_TESTS  # noqa: E402
from conftest import Clock  # noqa: E402

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock():
    return Clock()


def make_auth(store, clock, fakes=None, **policy):
    providers = [fake.provider() for fake in fakes] if fakes else []
    return Auth(
        store,
        secret_key=SECRET,
        providers=providers,
        redirect_uri=CALLBACK,
        password_hashing=CHEAP_FOR_TESTS,
        second_factor=SecondFactorPolicy(**policy),
        clock=clock,
    )


@pytest.fixture
def store():
    return MemoryStore()


@pytest.fixture
def auth(store, clock):
    return make_auth(store, clock)


@pytest.fixture
def ann(auth):
    return auth.create_account(email="ann@example.com", password=PASSWORD)


def password_sign_in(auth, email="ann@example.com"):
    session = {}
    step = auth.sessions.sign_in(session, auth.passwords.sign_in(email, PASSWORD))
    return session, step


def enrol_totp(auth, clock, session):
    clock.now += timedelta(seconds=1)
    enrolment = auth.second_factors.begin_totp(session)
    code = pyotp.TOTP(enrolment.secret).at(clock.now)
    return enrolment.secret, auth.second_factors.confirm_totp(session, code, name="Phone")


def next_code(secret, clock):
    """A code of the next time step (the enrolment's own step is used up)."""
    clock.now += timedelta(seconds=30)
    return pyotp.TOTP(secret).at(clock.now)


def test_without_a_factor_a_password_signs_in(auth, ann):
    session, step = password_sign_in(auth)
    assert step == "signed_in"
    assert auth.sessions.current(session) == ann


def test_enrolment_needs_one_valid_code_and_gives_recovery_codes_once(auth, ann, clock):
    session, _ = password_sign_in(auth)
    elsewhere, _ = password_sign_in(auth)
    enrolment = auth.second_factors.begin_totp(session)
    assert enrolment.uri.startswith("otpauth://totp/")
    assert "<svg" in enrolment.qr_svg
    assert "<script" not in enrolment.qr_svg.lower()
    with pytest.raises(InvalidSecondFactor):
        auth.second_factors.confirm_totp(
            session,
            "000000" if pyotp.TOTP(enrolment.secret).at(clock.now) != "000000" else "111111",
        )
    assert auth.second_factors.list(ann.id) == []
    clock.now += timedelta(seconds=1)  # a new credentials version, not the sign-in's
    enrolled = auth.second_factors.confirm_totp(
        session, pyotp.TOTP(enrolment.secret).at(clock.now), name="Phone"
    )
    assert (enrolled.factor.kind, enrolled.factor.name) == ("totp", "Phone")
    assert len(enrolled.recovery_codes) == 10
    assert len(set(enrolled.recovery_codes)) == 10
    assert auth.second_factors.recovery_codes_left(ann.id) == 10
    # This session goes on; the others end (a credential change).
    assert auth.sessions.current(session) is not None
    assert auth.sessions.current(elsewhere) is None
    # A second app gives no new recovery codes.
    second = enrol_totp(auth, clock, session)[1]
    assert second.recovery_codes == ()


def test_a_password_then_asks_for_the_code_and_only_the_code_signs_in(auth, ann, clock):
    session, _ = password_sign_in(auth)
    secret, _ = enrol_totp(auth, clock, session)
    session, step = password_sign_in(auth)
    assert step == "second_factor"
    assert ACCOUNT_KEY not in session
    assert auth.sessions.current(session) is None
    pending = auth.second_factors.pending(session)
    assert (pending.account.id, pending.step, pending.kinds) == (
        ann.id,
        "second_factor",
        frozenset({"totp"}),
    )
    with pytest.raises(InvalidSecondFactor):
        auth.second_factors.verify(
            session, "123456" if next_code(secret, clock) != "123456" else "654321"
        )
    assert auth.sessions.current(session) is None
    assert auth.second_factors.verify(session, pyotp.TOTP(secret).at(clock.now)).id == ann.id
    assert auth.sessions.current(session).id == ann.id
    assert PENDING_KEY not in session


def test_a_code_is_accepted_once_even_across_two_auth_instances(tmp_path, clock):
    store_url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = make_auth(SQLStore(store_url, create_schema=True), clock)
    second = make_auth(SQLStore(store_url), clock)
    first.create_account(email="ann@example.com", password=PASSWORD)
    session, _ = password_sign_in(first)
    secret, _ = enrol_totp(first, clock, session)
    code = next_code(secret, clock)
    one, _ = password_sign_in(first)
    two, _ = password_sign_in(second)
    first.second_factors.verify(one, code)
    with pytest.raises(InvalidSecondFactor):
        second.second_factors.verify(two, code)  # replayed on another instance
    assert second.sessions.current(two) is None


def test_a_recovery_code_works_once(auth, ann, clock):
    session, _ = password_sign_in(auth)
    _, enrolled = enrol_totp(auth, clock, session)
    code = enrolled.recovery_codes[3]
    used = []
    auth.on("recovery_code_used", used.append)
    session, _ = password_sign_in(auth)
    auth.second_factors.verify(session, code.upper().replace("-", " "))
    assert auth.sessions.current(session).id == ann.id
    assert auth.second_factors.recovery_codes_left(ann.id) == 9
    again, _ = password_sign_in(auth)
    with pytest.raises(InvalidSecondFactor):
        auth.second_factors.verify(again, code)
    assert [event.account.id for event in used] == [ann.id]


def _pending_session(auth, clock):
    session, _ = password_sign_in(auth)
    secret, _ = enrol_totp(auth, clock, session)
    pending, step = password_sign_in(auth)
    assert step == "second_factor"
    return pending, secret


def test_a_tampered_pending_sign_in_is_refused(auth, ann, clock):
    pending, secret = _pending_session(auth, clock)
    sealed = pending[PENDING_KEY]
    pending[PENDING_KEY] = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(SignInRequired):
        auth.second_factors.verify(pending, next_code(secret, clock))


def test_an_expired_pending_sign_in_is_refused(auth, ann, clock):
    pending, secret = _pending_session(auth, clock)
    clock.now += timedelta(minutes=6)
    with pytest.raises(SignInRequired):
        auth.second_factors.verify(pending, pyotp.TOTP(secret).at(clock.now))


def test_a_replayed_pending_sign_in_is_refused(auth, ann, clock):
    pending, secret = _pending_session(auth, clock)
    copied = copy.deepcopy(pending)
    auth.second_factors.verify(pending, next_code(secret, clock))
    with pytest.raises(SignInRequired):
        auth.second_factors.verify(copied, next_code(secret, clock))


def test_a_pending_sign_in_ends_when_the_password_changes(auth, ann, clock):
    pending, secret = _pending_session(auth, clock)
    clock.now += timedelta(seconds=1)
    auth.passwords.change(ann.id, current=PASSWORD, new="another long passphrase")
    with pytest.raises(SignInRequired):
        auth.second_factors.verify(pending, next_code(secret, clock))


def test_wrong_codes_are_throttled_apart_from_passwords(auth, ann, clock):
    pending, secret = _pending_session(auth, clock)
    for _ in range(5):
        with pytest.raises(InvalidSecondFactor):
            auth.second_factors.verify(pending, "not a code")
    with pytest.raises(TooManyAttempts):
        auth.second_factors.verify(pending, next_code(secret, clock))
    # A right password does not reset the code's bucket.
    again, _ = password_sign_in(auth)
    with pytest.raises(TooManyAttempts):
        auth.second_factors.verify(again, pyotp.TOTP(secret).at(clock.now))


def test_no_secret_or_recovery_code_is_readable_in_the_sqlite_file(tmp_path, clock):
    path = tmp_path / "factors.db"
    auth = make_auth(SQLStore(f"sqlite:///{path}", create_schema=True), clock)
    auth.create_account(email="ann@example.com", password=PASSWORD)
    session, _ = password_sign_in(auth)
    secret, enrolled = enrol_totp(auth, clock, session)
    raw = b"".join(
        Path(f"{path}{suffix}").read_bytes()
        for suffix in ("", "-wal")
        if Path(f"{path}{suffix}").exists()
    )
    for needle in (secret, secret.lower(), *enrolled.recovery_codes):
        assert needle.encode() not in raw
        assert needle.replace("-", "").encode() not in raw
        assert needle.replace("-", "").upper().encode() not in raw


def test_a_required_policy_sends_an_account_without_one_to_enrol(store, clock):
    auth = make_auth(store, clock, required=True)
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    session, step = password_sign_in(auth)
    assert step == "enrol_second_factor"
    assert auth.sessions.current(session) is None
    with pytest.raises(SignInRequired):
        auth.second_factors.verify(session, "123456")  # nothing to verify yet
    _, enrolled = enrol_totp(auth, clock, session)
    assert enrolled.signed_in
    assert auth.sessions.current(session).id == ann.id
    with pytest.raises(LastSecondFactor):
        auth.second_factors.remove(session, enrolled.factor.id)
    assert [f.id for f in auth.second_factors.list(ann.id)] == [enrolled.factor.id]


def test_an_optional_factor_can_be_removed_and_the_password_alone_works_again(auth, ann, clock):
    session, _ = password_sign_in(auth)
    _, enrolled = enrol_totp(auth, clock, session)
    removed = []
    auth.on("second_factor_removed", removed.append)
    auth.second_factors.remove(session, enrolled.factor.id)
    assert auth.sessions.current(session) is not None  # this session goes on
    assert [event.factor.id for event in removed] == [enrolled.factor.id]
    assert password_sign_in(auth)[1] == "signed_in"


def test_disabling_or_resetting_keeps_the_factors(auth, ann, clock):
    session, _ = password_sign_in(auth)
    _, enrolled = enrol_totp(auth, clock, session)
    auth.disable_account(ann.id)
    with pytest.raises(AccountDisabled):
        auth.passwords.sign_in("ann@example.com", PASSWORD)
    auth.enable_account(ann.id)
    token = auth.passwords.begin_reset("ann@example.com")
    auth.passwords.complete_reset(token, new_password="a brand new passphrase")
    assert [f.id for f in auth.second_factors.list(ann.id)] == [enrolled.factor.id]
    session = {}
    account = auth.passwords.sign_in("ann@example.com", "a brand new passphrase")
    assert auth.sessions.sign_in(session, account) == "second_factor"


def test_a_google_sign_in_asks_for_the_second_factor_too(store, clock, fakes):
    google, _ = fakes
    auth = make_auth(store, clock, fakes=fakes)
    auth.create_account(email="ann@example.com", password=PASSWORD)
    session, _ = password_sign_in(auth)
    enrol_totp(auth, clock, session)
    session = {}
    start = auth.begin_sign_in("google", session=session)
    outcome = auth.complete(google.authorize(start.url, email="ann@example.com"), session=session)
    assert (outcome.kind, outcome.step) == ("signed_in", "second_factor")
    assert "One more step" in outcome.message
    assert auth.sessions.current(session) is None
    assert auth.second_factors.pending(session).account.email == "ann@example.com"


def test_the_flask_adapter_sends_a_first_factor_to_the_second_step(auth, ann, clock):
    from flask import Flask, g, request  # noqa: PLC0415

    from bpart_auth.flask import FlaskAuth  # noqa: PLC0415

    app = Flask("second_factor_test")
    app.secret_key = "a Flask secret key for this test"
    bpart = FlaskAuth(auth, app)

    @app.post("/login")
    def login():
        return bpart.sign_in(auth.passwords.sign_in(request.form["email"], PASSWORD))

    @app.post("/second-factor")
    def second_factor():
        from flask import session  # noqa: PLC0415

        auth.second_factors.verify(session, request.form["code"])
        return "signed in"

    @app.get("/whoami")
    def whoami():
        return g.account.email if g.account else "nobody"

    session, _ = password_sign_in(auth)
    secret, _ = enrol_totp(auth, clock, session)
    same_origin = {"Sec-Fetch-Site": "same-origin"}
    with app.test_client() as client:
        response = client.post("/login", data={"email": ann.email}, headers=same_origin)
        assert (response.status_code, response.location) == (302, "/second-factor")
        assert client.get("/whoami").get_data(as_text=True) == "nobody"
        code = next_code(secret, clock)
        assert (
            client.post("/second-factor", data={"code": code}, headers=same_origin).status_code
            == 200
        )
        assert client.get("/whoami").get_data(as_text=True) == ann.email


# Passkeys

ORIGIN = "https://backoffice.test"


@pytest.fixture
def passkey_auth(store, clock):
    from bpart_auth.passkeys import RelyingParty  # noqa: PLC0415

    rp = RelyingParty(rp_id="backoffice.test", rp_name="Back office", origins=[ORIGIN])
    return make_auth(store, clock, relying_party=rp)


@pytest.fixture
def key():
    from bpart_auth.testing import SoftAuthenticator  # noqa: PLC0415

    return SoftAuthenticator(origin=ORIGIN, rp_id="backoffice.test")


def register_passkey(auth, key):
    session, _ = password_sign_in(auth)
    options = auth.second_factors.begin_passkey_registration(session)
    return auth.second_factors.complete_passkey_registration(
        session, key.create(options), name="Laptop"
    )


def test_a_passkey_registers_and_signs_in_without_a_password(passkey_auth, key):
    auth = passkey_auth
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    enrolled = register_passkey(auth, key)
    assert (enrolled.factor.kind, enrolled.factor.name) == ("passkey", "Laptop")
    assert len(enrolled.recovery_codes) == 10
    session = {"planted": "before"}
    options = auth.second_factors.begin_passkey(session)
    assert auth.second_factors.complete_passkey(session, key.get(options)).id == ann.id
    assert auth.sessions.current(session).id == ann.id
    assert "planted" not in session


def test_a_passkey_is_the_second_step_after_a_password(passkey_auth, key):
    auth = passkey_auth
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    register_passkey(auth, key)
    session, step = password_sign_in(auth)
    assert step == "second_factor"
    options = auth.second_factors.begin_passkey(session)
    auth.second_factors.complete_passkey(session, key.get(options, user_verified=False))
    assert auth.sessions.current(session).id == ann.id


def test_passwordless_needs_user_verification_and_a_known_passkey(passkey_auth, key):
    from bpart_auth import passkeys  # noqa: PLC0415
    from bpart_auth.testing import SoftAuthenticator  # noqa: PLC0415

    auth = passkey_auth
    auth.create_account(email="ann@example.com", password=PASSWORD)
    register_passkey(auth, key)
    session = {}
    with pytest.raises(InvalidSecondFactor):
        auth.second_factors.complete_passkey(
            session, key.get(auth.second_factors.begin_passkey(session), user_verified=False)
        )
    stranger = SoftAuthenticator(origin=ORIGIN, rp_id="backoffice.test")
    rp = passkeys.RelyingParty(rp_id="backoffice.test", rp_name="Back office", origins=[ORIGIN])
    options, _ = passkeys.registration_options(
        rp, user_id=b"someone", user_name="someone@example.com", display_name="Someone"
    )
    stranger.create(options)  # a passkey for this site the app never registered
    with pytest.raises(InvalidSecondFactor):
        auth.second_factors.complete_passkey(
            session, stranger.get(auth.second_factors.begin_passkey(session))
        )
    assert auth.sessions.current(session) is None


def test_another_accounts_passkey_cannot_finish_a_pending_sign_in(passkey_auth, key):
    import json  # noqa: PLC0415

    from bpart_auth.testing import SoftAuthenticator  # noqa: PLC0415

    auth = passkey_auth
    auth.create_account(email="ann@example.com", password=PASSWORD)
    auth.create_account(email="bob@example.com", password=PASSWORD)
    register_passkey(auth, key)  # ann's
    bobs_key = SoftAuthenticator(origin=ORIGIN, rp_id="backoffice.test")
    bob_session, _ = password_sign_in(auth, "bob@example.com")
    auth.second_factors.complete_passkey_registration(
        bob_session,
        bobs_key.create(auth.second_factors.begin_passkey_registration(bob_session)),
    )
    pending, step = password_sign_in(auth)  # ann's password
    assert step == "second_factor"
    options = json.loads(auth.second_factors.begin_passkey(pending))
    options.pop("allowCredentials", None)  # bob answers the challenge anyway
    with pytest.raises(InvalidSecondFactor):
        auth.second_factors.complete_passkey(pending, bobs_key.get(options))
    assert auth.sessions.current(pending) is None


# Hostile input: only AuthError escapes, and nothing signs in

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from bpart_auth import AuthError  # noqa: E402
from test_hostile_input import hostile  # noqa: E402

HOSTILE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def ann_with_passkey(passkey_auth, key):
    passkey_auth.create_account(email="ann@example.com", password=PASSWORD)
    register_passkey(passkey_auth, key)
    return passkey_auth


@HOSTILE
@given(value=hostile)
def test_any_code_at_the_second_step_is_refused_with_an_auth_error(ann_with_passkey, value):
    auth = ann_with_passkey
    pending, step = password_sign_in(auth)
    assert step == "second_factor"
    with pytest.raises(AuthError):
        auth.second_factors.verify(pending, value)
    assert auth.sessions.current(pending) is None


@HOSTILE
@given(
    value=st.one_of(
        hostile,
        st.dictionaries(st.sampled_from(["id", "rawId", "type", "response"]), hostile, max_size=4),
    )
)
def test_any_passkey_answer_is_refused_with_an_auth_error(passkey_auth, value):
    session = {}
    passkey_auth.second_factors.begin_passkey(session)
    with pytest.raises(AuthError):
        passkey_auth.second_factors.complete_passkey(session, value)
    assert passkey_auth.sessions.current(session) is None


@HOSTILE
@given(value=hostile)
def test_any_pending_or_enrolment_value_in_the_session_is_no_sign_in(auth, value):
    from bpart_auth.services.second_factors import ENROLMENT_KEY  # noqa: PLC0415

    session = {PENDING_KEY: value, ENROLMENT_KEY: value}
    assert auth.second_factors.pending(session) is None
    with pytest.raises(AuthError):
        auth.second_factors.verify(session, "123456")
    with pytest.raises(AuthError):
        auth.second_factors.confirm_totp(session, "123456")
    assert auth.sessions.current(session) is None


def test_beginning_again_shows_the_same_secret_until_it_is_confirmed(auth, ann, clock):
    session, _ = password_sign_in(auth)
    first = auth.second_factors.begin_totp(session)
    assert auth.second_factors.begin_totp(session).secret == first.secret
    auth.second_factors.confirm_totp(session, pyotp.TOTP(first.secret).at(clock.now))
    assert auth.second_factors.begin_totp(session).secret != first.secret


def test_a_recovery_code_still_works_when_the_apps_secret_no_longer_opens(store, clock):
    auth = make_auth(store, clock)
    auth.create_account(email="ann@example.com", password=PASSWORD)
    session, _ = password_sign_in(auth)
    secret, enrolled = enrol_totp(auth, clock, session)
    # A new secret_key without the old one as a fallback: the app's secret is sealed shut.
    rotated = Auth(
        store,
        secret_key="another unit-test secret of 32+ bytes",
        password_hashing=CHEAP_FOR_TESTS,
        second_factor=SecondFactorPolicy(),
        clock=clock,
    )
    pending, step = password_sign_in(rotated)
    assert step == "second_factor"
    with pytest.raises(InvalidSecondFactor):
        rotated.second_factors.verify(pending, next_code(secret, clock))
    assert rotated.second_factors.verify(pending, enrolled.recovery_codes[0]).email == (
        "ann@example.com"
    )


def test_an_old_cookie_and_a_captured_passkey_answer_do_not_sign_in_again(passkey_auth):
    from bpart_auth.testing import SoftAuthenticator  # noqa: PLC0415

    auth = passkey_auth
    synced = SoftAuthenticator(origin=ORIGIN, rp_id="backoffice.test", counter=False)
    auth.create_account(email="ann@example.com", password=PASSWORD)
    register_passkey(auth, synced)
    session = {}
    options = auth.second_factors.begin_passkey(session)
    old_cookie = copy.deepcopy(session)
    answer = synced.get(options)  # a synced passkey: its counter stays 0
    auth.second_factors.complete_passkey(session, answer)
    with pytest.raises(SignInRequired):
        auth.second_factors.complete_passkey(old_cookie, answer)
    assert auth.sessions.current(old_cookie) is None
