from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import responses
from fastapi.testclient import TestClient
from fastapi_example import create_app

from bpart_auth import Auth, MemoryStore
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft

SECRET = "a test secret key, 32 bytes long!"
PASSWORD = "correct horse battery staple"


@dataclass
class App:
    auth: Auth
    google: FakeGoogle
    microsoft: FakeMicrosoft
    client: TestClient

    def sign_in(self, email, password=PASSWORD):
        response = self.client.post("/login", json={"email": email, "password": password})
        assert response.status_code == 200, response.json()

    def flow(self, start_url, fake, **claims):
        """POST `start_url`, play the user at the fake provider, GET the callback."""
        response = self.client.post(start_url)
        assert response.status_code == 303, response.text
        params = fake.authorize(response.headers["location"], **claims)
        return self.client.get("/auth/callback", params=params)

    def json(self, url):
        response = self.client.get(url)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def fakes():
    return FakeGoogle(), FakeMicrosoft()  # made once: each makes its signing keys


@pytest.fixture
def mock():
    # `responses` patches `requests` only: the fakes answer the library's calls to the
    # providers, and TestClient (httpx) goes straight to the app.
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def start(mock, google, microsoft):
    google.install(mock)
    microsoft.install(mock)
    auth = Auth(
        MemoryStore(),
        secret_key=SECRET,
        providers=[google.provider(), microsoft.provider()],
        redirect_uri="https://testserver/auth/callback",
        password_hashing=CHEAP_FOR_TESTS,
    )
    app = create_app(auth, secret_key="a session key")  # https_only: hence the https base URL
    # As the app's own pages in a browser: Sec-Fetch-Site says they are this origin's.
    headers = {"Sec-Fetch-Site": "same-origin"}
    client = TestClient(app, base_url="https://testserver", follow_redirects=False, headers=headers)
    return App(auth, google, microsoft, client)


@pytest.fixture
def app(mock, fakes):
    return start(mock, *fakes)


def test_password_sign_in(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    assert app.client.get("/me").status_code == 401
    response = app.client.post("/login", json={"email": "boss@example.com", "password": PASSWORD})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert all(flag in cookie for flag in ("httponly", "samesite=lax", "secure"))
    me = app.json("/me")
    assert (me["email"], me["notice"]) == ("boss@example.com", "You are signed in.")
    assert app.json("/me")["notice"] is None  # a notice is shown once


def test_wrong_password_is_401_with_its_code(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    response = app.client.post("/login", json={"email": "boss@example.com", "password": "nope"})
    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_credentials",
        "message": "The email address or password is incorrect.",
    }
    assert app.client.get("/me").status_code == 401


def test_throttled_sign_in_is_429_with_retry_after(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    for _ in range(5):
        app.client.post("/login", json={"email": "boss@example.com", "password": "nope"})
    response = app.client.post("/login", json={"email": "boss@example.com", "password": PASSWORD})
    assert response.status_code == 429
    assert response.json()["code"] == "too_many_attempts"
    assert 0 < int(response.headers["retry-after"]) <= 15 * 60


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, 403, id="cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, 403, id="sibling-subdomain"),
        pytest.param({"Origin": "https://evil.test"}, 403, id="foreign-origin"),
        pytest.param({"Origin": "http://testserver"}, 403, id="origin-over-http"),
        pytest.param({}, 403, id="neither-header"),
        pytest.param({"Origin": "https://testserver"}, 200, id="own-origin"),
        pytest.param({"Sec-Fetch-Site": "same-origin"}, 200, id="same-origin"),
    ],
)
def test_a_post_from_elsewhere_is_refused(app, headers, status):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    form = {"email": "boss@example.com", "password": PASSWORD}
    client = TestClient(app.client.app, base_url="https://testserver", headers=headers)
    response = client.post("/login", json=form)
    assert response.status_code == status, response.text
    assert (client.get("/me").status_code == 200) is (status == 200)


def test_google_sign_in_by_verified_email(app):
    app.auth.create_account(email="ann@example.com")
    response = app.flow("/login/google", app.google, email="ann@example.com")
    assert (response.status_code, response.headers["location"]) == (303, "/me")
    me = app.json("/me")
    assert (me["email"], me["notice"]) == ("ann@example.com", "You are signed in with Google.")
    assert app.json("/profile")["linked"] == [{"provider": "google", "email": "ann@example.com"}]


def test_microsoft_refused_until_linked_from_the_profile(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.headers["location"] == "/login?error=identity_not_linked"
    assert app.client.get("/me").status_code == 401

    app.sign_in("boss@example.com")
    response = app.flow("/profile/link/microsoft", app.microsoft)
    assert (response.status_code, response.headers["location"]) == (303, "/profile")
    profile = app.json("/profile")
    assert profile["notice"].startswith("Your Microsoft account is now linked.")
    assert [link["provider"] for link in profile["linked"]] == ["microsoft"]

    assert app.client.post("/logout").status_code == 204
    assert app.client.get("/me").status_code == 401
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.headers["location"] == "/me"
    assert app.json("/me")["email"] == "boss@example.com"

    response = app.client.post("/profile/unlink/microsoft")  # this session stays signed in
    assert (response.status_code, response.json()["linked"]) == (200, [])
    assert app.json("/me")["email"] == "boss@example.com"


def test_a_replayed_callback_is_refused(app):
    app.auth.create_account(email="ann@example.com")
    location = app.client.post("/login/google").headers["location"]
    callback = "/auth/callback?" + urlencode(app.google.authorize(location))
    assert app.client.get(callback).headers["location"] == "/me"
    assert app.client.post("/logout").status_code == 204
    assert app.client.get(callback).headers["location"] == "/login?error=invalid_flow_state"
    assert app.client.get("/me").status_code == 401


def invite_path(app, email):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    response = app.client.post("/admin/invites", json={"email": email})
    assert response.status_code == 201
    assert response.json()["email"] == email
    assert app.client.post("/logout").status_code == 204
    return response.json()["accept_url"].removeprefix("https://testserver")


def test_invitation_accepted_with_a_password(app):
    path = invite_path(app, "new@example.com")
    assert app.json(path)["email"] == "new@example.com"

    response = app.client.post(f"{path}/password", json={"password": "short"})
    assert (response.status_code, response.json()["code"]) == (400, "password_too_short")

    response = app.client.post(f"{path}/password", json={"password": PASSWORD, "name": "New"})
    assert response.status_code == 200
    me = app.json("/me")
    assert (me["email"], me["name"]) == ("new@example.com", "New")

    response = app.client.get(path)
    assert (response.status_code, response.json()["code"]) == (410, "invite_used")


def test_invitation_accepted_with_microsoft(app):
    path = invite_path(app, "new@example.com")
    response = app.flow(f"{path}/microsoft", app.microsoft)
    assert (response.status_code, response.headers["location"]) == (303, "/me")
    assert app.json("/me")["email"] == "new@example.com"

    assert app.client.post("/logout").status_code == 204
    assert app.flow("/login/microsoft", app.microsoft).headers["location"] == "/me"
    assert app.json("/me")["email"] == "new@example.com"


def test_unlinking_the_last_sign_in_method_is_409(app):
    app.auth.create_account(email="ann@example.com")  # no password: Google is all she has
    assert app.flow("/login/google", app.google).headers["location"] == "/me"
    response = app.client.post("/profile/unlink/google")
    assert response.status_code == 409
    assert response.json()["code"] == "last_sign_in_method"
    assert response.json()["message"].startswith("You can't remove your only way to sign in.")
    assert len(app.json("/profile")["linked"]) == 1


def test_admin_consent_required_shows_the_consent_url(mock, fakes):
    blocked = FakeMicrosoft(consent_required_tenants=[FakeMicrosoft.WORK_TENANT])
    app = start(mock, fakes[0], blocked)
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "Your organization must approve this app" in response.text
    consent_url = "https://login.fake-microsoft.test/organizations/adminconsent?client_id="
    assert f'href="{consent_url}' in response.text


def test_a_disabled_account_loses_its_session_on_the_next_request(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    assert app.client.get("/me").status_code == 200
    app.auth.disable_account(boss.id)
    response = app.client.get("/me")
    assert (response.status_code, response.json()) == (401, {"detail": "Your session has ended."})
    app.auth.enable_account(boss.id)
    assert app.client.get("/profile").status_code == 401  # the session stays ended


def test_a_credential_change_elsewhere_ends_older_sessions(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    app.auth.passwords.change(boss.id, current=PASSWORD, new="another fine passphrase")
    assert app.client.get("/me").status_code == 401
