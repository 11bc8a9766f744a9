import html
import re
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

import django_example
import pytest
import responses
from django.test import Client, override_settings

from bpart_auth import Auth, MemoryStore
from bpart_auth.services.sessions import ACCOUNT_KEY
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft

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

    def post(self, url, data=None):
        response = self.client.post(url, data or {}, follow=True)
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
def start(mock, microsoft=None):
    google, microsoft = FakeGoogle(), microsoft or FakeMicrosoft()
    google.install(mock)
    microsoft.install(mock)
    auth = Auth(
        MemoryStore(),
        secret_key=SECRET,
        providers=[google.provider(), microsoft.provider()],
        redirect_uri="http://testserver/auth/callback",
        password_hashing=CHEAP_FOR_TESTS,
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
