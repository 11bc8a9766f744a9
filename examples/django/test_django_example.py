import html
import json
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import django_example
import pyotp
import pytest
import responses
from django.test import Client, override_settings

from bpart_auth import Auth, MemoryStore, SecondFactorPolicy
from bpart_auth.passkeys import RelyingParty
from bpart_auth.services.sessions import ACCOUNT_KEY
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft, SoftAuthenticator

SECRET = "a test secret key, 32 bytes long!"
PASSWORD = "correct horse battery staple"


@dataclass
class App:
    auth: Auth
    google: FakeGoogle
    microsoft: FakeMicrosoft
    client: Client

    def text(self, url, **kwargs):
        response = self.client.get(url, follow=True, **kwargs)
        return html.unescape(response.content.decode())

    def post(self, url, data=None, *, page=None):
        """POST, from `page` (its Referer) if given: a refusal comes back there."""
        headers = {"HTTP_REFERER": f"http://testserver{page}"} if page else {}
        response = self.client.post(url, data or {}, follow=True, **headers)
        return html.unescape(response.content.decode())

    def sign_in(self, email, password=PASSWORD):
        response = self.client.post("/login", {"email": email, "password": password})
        assert response.status_code == 302
        return response

    def redirect_flow(self, start_url, fake, **claims):
        """POST `start_url`, play the user at the fake provider, GET the callback."""
        response = self.client.post(start_url)
        assert response.status_code == 302
        params = fake.authorize(response["Location"], **claims)
        return self.client.get("/auth/callback?" + urlencode(params))


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@contextmanager
def start(mock, microsoft=None, *, required=False):
    google, microsoft = FakeGoogle(), microsoft or FakeMicrosoft()
    google.install(mock)
    microsoft.install(mock)
    auth = Auth(
        MemoryStore(),
        secret_key=SECRET,
        providers=[google.provider(), microsoft.provider()],
        redirect_uri="http://testserver/auth/callback",
        password_hashing=CHEAP_FOR_TESTS,
        second_factor=SecondFactorPolicy(
            required=required,
            # WebAuthn origins are https, or http on localhost: the passkey's origin.
            relying_party=RelyingParty("localhost", "Back office", ["http://localhost"]),
        ),
    )
    # Django's settings are configured once per process (here or by another test module):
    # every test overrides them with the example's, its own `Auth` included.
    django_example.configure(auth, secret_key=SECRET)
    with override_settings(**django_example.settings_for(auth, secret_key=SECRET)):
        yield App(auth, google, microsoft, Client())


@pytest.fixture
def app(mock):
    with start(mock) as app:
        yield app


def test_password_sign_in_and_wrong_password(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    assert app.client.get("/")["Location"] == "/login"

    page = app.post("/login", {"email": "boss@example.com", "password": "wrong password!"})
    assert "The email address or password is incorrect." in page
    assert app.client.get("/").status_code == 302

    assert app.sign_in("boss@example.com")["Location"] == "/"
    assert "Signed in as boss@example.com" in app.text("/")


def test_google_sign_in_by_verified_email(app):
    ann = app.auth.create_account(email="ann@example.com")
    response = app.redirect_flow("/login/google", app.google, email="ann@example.com")
    assert response["Location"] == "/"
    assert "Signed in as ann@example.com" in app.text("/")
    assert app.auth.sign_in_methods(ann.id).providers == {"google"}


def test_microsoft_refused_until_linked_from_profile(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    response = app.redirect_flow("/login/microsoft", app.microsoft, oid="oid-boss")
    assert response["Location"] == "/login"
    assert "This Microsoft account is not linked to any user here." in app.text("/login")

    app.sign_in("boss@example.com")
    response = app.redirect_flow("/profile/link/microsoft", app.microsoft, oid="oid-boss")
    assert response["Location"] == "/profile"
    page = app.text("/profile")  # the session survives the link's credential stamp
    assert "Your Microsoft account is now linked." in page
    assert "Unlink Microsoft" in page

    app.client.post("/logout")
    assert app.client.get("/").status_code == 302
    response = app.redirect_flow("/login/microsoft", app.microsoft, oid="oid-boss")
    assert response["Location"] == "/"
    assert "Signed in as boss@example.com" in app.text("/")

    page = app.post("/profile/unlink/microsoft")  # the password remains: allowed
    assert "Microsoft is no longer linked." in page
    assert "Link Microsoft" in page
    assert app.auth.sign_in_methods(boss.id).providers == set()


def invite(app, email):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    page = app.post("/admin/invites", {"email": email})
    assert f"Invitation for {email}" in page
    assert email in page.split("<ul>")[1]  # pending
    app.client.post("/logout")
    return re.search(r"http://testserver(/invite/[\w-]+)", page).group(1)


def test_invitation_accepted_with_password(app):
    link = invite(app, "bob@example.com")
    assert "Invitation for bob@example.com" in app.text(link)

    page = app.post(f"{link}/password", {"name": "Bob", "password": PASSWORD})
    assert "Welcome! Your account is ready." in page
    assert "Signed in as bob@example.com" in page
    app.client.post("/logout")
    assert app.client.get(link)["Location"] == "/login"  # used
    assert "This invitation was already accepted." in app.text("/login")


def test_invitation_accepted_with_microsoft(app):
    link = invite(app, "bob@example.com")
    response = app.redirect_flow(f"{link}/microsoft", app.microsoft, oid="oid-bob")
    assert response["Location"] == "/"
    assert "Signed in as bob@example.com" in app.text("/")

    app.client.post("/logout")
    app.redirect_flow("/login/microsoft", app.microsoft, oid="oid-bob")
    assert "Signed in as bob@example.com" in app.text("/")


def test_unlinking_the_last_method_is_refused(app):
    ann = app.auth.create_account(email="ann@example.com")
    app.redirect_flow("/login/google", app.google, email="ann@example.com")

    page = app.post("/profile/unlink/google")
    assert "You can't remove your only way to sign in." in page
    assert app.auth.sign_in_methods(ann.id).providers == {"google"}
    assert "Signed in as ann@example.com" in app.text("/")


def test_admin_consent_required_shows_the_consent_url(mock):
    microsoft = FakeMicrosoft(consent_required_tenants=[FakeMicrosoft.WORK_TENANT])
    with start(mock, microsoft) as app:
        response = app.redirect_flow("/login/microsoft", app.microsoft)
    assert response.status_code == 403
    page = html.unescape(response.content.decode())
    assert "Your organization must approve this app" in page
    consent_url = re.search(r'href="([^"]+)"', page).group(1)
    assert consent_url.startswith(f"{app.microsoft.authority_host}/")
    assert "adminconsent" in consent_url


@pytest.mark.parametrize("change", ["disable", "password"])
def test_session_ends_when_account_disabled_or_credentials_change(app, change):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    assert app.client.get("/").status_code == 200

    if change == "disable":
        app.auth.disable_account(boss.id)
    else:  # changed in another session
        app.auth.passwords.change(boss.id, current=PASSWORD, new="another good passphrase")
    response = app.client.get("/")
    assert response["Location"] == "/login"
    assert "Your session has ended." in app.text("/login")
    assert app.client.get("/profile")["Location"] == "/login"  # not just this request


def test_every_sign_in_starts_a_fresh_session(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    session = app.client.session
    session["planted"] = "by someone else before the sign-in"
    session.save()
    app.client.cookies["sessionid"] = session.session_key
    assert "planted" in app.client.session
    app.sign_in("boss@example.com")
    after = app.client.session
    assert "planted" not in after
    assert after.session_key != session.session_key
    assert app.auth.sessions.account(after[ACCOUNT_KEY]).email == "boss@example.com"


def test_two_tabs_each_finish_their_own_flow(app):
    ann = app.auth.create_account(email="ann@example.com", password=PASSWORD)
    app.sign_in("ann@example.com")
    google_tab = app.client.post("/profile/link/google")["Location"]
    microsoft_tab = app.client.post("/profile/link/microsoft")["Location"]  # the first stays
    params = app.microsoft.authorize(microsoft_tab, oid="oid-ann")
    assert app.client.get("/auth/callback?" + urlencode(params))["Location"] == "/profile"
    params = app.google.authorize(google_tab, email="ann@example.com")
    assert app.client.get("/auth/callback?" + urlencode(params))["Location"] == "/profile"
    page = app.text("/profile")
    assert "Your Microsoft account is now linked." in page
    assert "Your Google account is now linked." in page
    assert "Unlink Google" in page
    assert "Unlink Microsoft" in page
    assert app.auth.sign_in_methods(ann.id).providers == {"google", "microsoft"}


def test_a_flow_begun_in_another_browser_is_refused(app):
    app.auth.create_account(email="ann@example.com")
    start = Client().post("/login/google")["Location"]  # the attacker's browser
    params = app.google.authorize(start, email="ann@example.com")
    assert app.client.get("/auth/callback?" + urlencode(params))["Location"] == "/login"
    assert "Your sign-in took too long or was interrupted." in app.text("/login")
    assert app.client.get("/")["Location"] == "/login"


def test_django_csrf_refuses_a_form_posted_without_its_token(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    browser = Client(enforce_csrf_checks=True)
    form = {"email": "boss@example.com", "password": PASSWORD}
    assert browser.post("/login", form).status_code == 403
    token = re.search(
        r'name="csrfmiddlewaretoken" value="(\w+)"', browser.get("/login").content.decode()
    ).group(1)
    assert browser.post("/login", {**form, "csrfmiddlewaretoken": token})["Location"] == "/"


# Second factors


def enrol_app(app, name="Phone"):
    """Add an authenticator app from the enrolment page; the secret and recovery codes."""
    page = app.text("/second-factor/enrol")
    secret = re.search(r'<code id="secret">(\w+)</code>', page).group(1)
    page = app.post("/second-factor/enrol", {"name": name, "code": pyotp.TOTP(secret).now()})
    assert f"{name} added." in page
    return secret, re.findall(r"<li>([\w-]+)</li>", page.split('id="recovery-codes"')[1])


def next_code(secret):
    """A code of the next time step: the enrolment used this one (within the drift)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def test_an_authenticator_app_is_enrolled_then_asked_for_at_sign_in(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    assert "None yet." in app.text("/profile")

    enrolment = app.client.get("/second-factor/enrol")
    assert "no-store" in enrolment["Cache-Control"]
    page = html.unescape(enrolment.content.decode())
    assert "<svg" in page
    assert "<script" not in page.split("</script>", 1)[1]  # the QR code is only a drawing
    page = app.post("/second-factor/enrol", {"code": "000000"}, page="/second-factor/enrol")
    assert "That code didn't work." in page
    assert 'id="secret"' in page  # back on the enrolment page, a new secret

    secret, codes = enrol_app(app)
    assert len(codes) == 10
    page = app.text("/profile")
    assert "Phone (authenticator app)" in page
    assert "last used never" in page
    assert "10 recovery codes left." in page
    assert not any(code in page for code in codes)  # shown once

    app.client.post("/logout")
    assert app.sign_in("boss@example.com")["Location"] == "/second-factor"
    assert app.client.get("/")["Location"] == "/login"  # not signed in yet
    page = app.text("/second-factor")
    assert "One more step" in page
    assert "Signing in as boss@example.com." in page
    assert "Use a passkey" not in page

    assert "That code didn't work." in app.post(
        "/second-factor", {"code": "123456"}, page="/second-factor"
    )
    key = app.client.session.session_key
    assert app.client.post("/second-factor", {"code": next_code(secret)})["Location"] == "/"
    assert app.client.session.session_key != key
    assert "Signed in as boss@example.com" in app.text("/")
    assert "Phone (authenticator app)" in app.text("/profile")
    assert "last used never" not in app.text("/profile")


def test_a_recovery_code_works_once_and_regenerating_replaces_them(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    _, codes = enrol_app(app)
    app.client.post("/logout")

    app.sign_in("boss@example.com")
    assert app.client.post("/second-factor", {"code": codes[0]})["Location"] == "/"
    assert "9 recovery codes left." in app.text("/profile")
    app.client.post("/logout")
    app.sign_in("boss@example.com")
    assert "That code didn't work." in app.post(
        "/second-factor", {"code": codes[0]}, page="/second-factor"
    )
    assert app.client.post("/second-factor", {"code": codes[1]})["Location"] == "/"

    response = app.client.post("/second-factor/recovery-codes")
    assert "no-store" in response["Cache-Control"]
    fresh = re.findall(r"<li>([\w-]+)</li>", response.content.decode())
    assert len(fresh) == 10
    assert not set(fresh) & set(codes)
    app.client.post("/logout")
    app.sign_in("boss@example.com")
    assert "That code didn't work." in app.post(
        "/second-factor", {"code": codes[2]}, page="/second-factor"
    )
    assert app.client.post("/second-factor", {"code": fresh[0]})["Location"] == "/"


def passkey_answer(app, key, ceremony):
    """What the page's JS does: fetch the options, ask the authenticator, keep its JSON."""
    response = app.client.post(f"/passkeys/options/{ceremony}")
    assert response["Content-Type"] == "application/json"
    options = response.content.decode()
    answer = key.create(options) if ceremony == "create" else key.get(options)
    return json.dumps(answer)


def test_a_passkey_is_added_then_used_as_second_step_and_alone(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    key = SoftAuthenticator(origin="http://localhost", rp_id="localhost")
    app.sign_in("boss@example.com")
    credential = passkey_answer(app, key, "create")
    page = app.post("/second-factor/passkeys", {"credential": credential, "name": "Laptop"})
    assert "Laptop added." in page
    assert len(re.findall(r"<li>([\w-]+)</li>", page)) == 10  # its first factor: codes
    assert "Laptop (passkey)" in app.text("/profile")
    refused = app.post("/second-factor/passkeys", {"credential": credential, "name": "Again"})
    assert "Again added." not in refused  # the challenge was used, or it is registered

    app.client.post("/logout")
    app.sign_in("boss@example.com")
    assert "Use a passkey" in app.text("/second-factor")
    answer = passkey_answer(app, key, "get")
    assert app.client.post("/second-factor/passkey", {"credential": answer})["Location"] == "/"
    assert "Signed in as boss@example.com" in app.text("/")

    app.client.post("/logout")  # passwordless, from the login page
    assert "Sign in with a passkey" in app.text("/login")
    answer = passkey_answer(app, key, "get")
    assert app.client.post("/second-factor/passkey", {"credential": answer})["Location"] == "/"
    assert "Signed in as boss@example.com" in app.text("/")

    app.client.post("/logout")
    page = app.post("/second-factor/passkey", {"credential": answer})  # replayed
    assert "Signed in as" not in page
    assert app.client.get("/")["Location"] == "/login"


def test_a_removed_factor_is_no_longer_asked_for(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    enrol_app(app)
    [factor] = app.auth.second_factors.list(boss.id)
    page = app.post(f"/second-factor/{factor.id}/remove")
    assert "Phone removed." in page
    assert "None yet." in page
    assert "Signed in as" in app.text("/")  # this session goes on
    app.client.post("/logout")
    assert app.sign_in("boss@example.com")["Location"] == "/"


def test_a_required_second_factor_is_enrolled_before_signing_in(mock):
    with start(mock, required=True) as app:
        app.auth.create_account(email="boss@example.com", password=PASSWORD)
        assert app.sign_in("boss@example.com")["Location"] == "/second-factor/enrol"
        assert app.client.get("/")["Location"] == "/login"
        assert "Or add a passkey" in app.text("/second-factor/enrol")
        _, codes = enrol_app(app)
        assert len(codes) == 10
        assert "Signed in as boss@example.com" in app.text("/")


def test_the_passkey_fetch_carries_djangos_csrf_token(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/login").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="(\w+)"', page).group(1)
    assert "X-CSRFToken" in page  # the page's JS sends it
    assert browser.post("/passkeys/options/get").status_code == 403
    response = browser.post("/passkeys/options/get", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert json.loads(response.content)["rpId"] == "localhost"
