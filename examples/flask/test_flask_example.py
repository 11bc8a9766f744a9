import ast
import html
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import responses
from flask.testing import FlaskClient
from flask_example import create_app

from bpart_auth import Auth, MemoryStore
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft

SECRET = "a test secret key, 32 bytes long!"
PASSWORD = "correct horse battery staple"
NOT_LINKED = "This Microsoft account is not linked to any user here."
ENDED = "Your session has ended. Please sign in again."


@dataclass
class App:
    auth: Auth
    google: FakeGoogle
    microsoft: FakeMicrosoft
    client: FlaskClient

    def post(self, url, **form):
        """POST a form as the page would: with the session's CSRF token."""
        with self.client.session_transaction() as session:
            form.setdefault("csrf", session.setdefault("csrf", "token-from-the-form"))
        return self.client.post(url, data=form)

    def text(self, url):
        return html.unescape(self.client.get(url, follow_redirects=True).get_data(as_text=True))

    def sign_in(self, email, password=PASSWORD):
        response = self.post("/login", email=email, password=password)
        assert (response.status_code, response.location) == (302, "/")

    def flow(self, start_url, fake, **claims):
        """POST `start_url`, play the user at the fake provider, GET the callback."""
        response = self.post(start_url)
        assert response.status_code == 302
        params = fake.authorize(response.location, **claims)
        return self.client.get("/auth/callback?" + urlencode(params))


@pytest.fixture
def mock():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def start(mock, microsoft=None):
    google, microsoft = FakeGoogle(), microsoft or FakeMicrosoft()
    google.install(mock)
    microsoft.install(mock)
    auth = Auth(
        MemoryStore(),
        secret_key=SECRET,
        providers=[google.provider(), microsoft.provider()],
        password_hashing=CHEAP_FOR_TESTS,
    )
    flask_app = create_app(auth, secret_key="a Flask session key", secure_cookies=False)
    return App(auth, google, microsoft, flask_app.test_client())


@pytest.fixture
def app(mock):
    return start(mock)


def test_session_cookie_settings(mock):
    config = create_app(start(mock).auth, secret_key="k").config
    assert config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert config["SESSION_COOKIE_HTTPONLY"] is True
    assert config["SESSION_COOKIE_SECURE"] is True  # unless secure_cookies=False


def test_password_sign_in_and_wrong_password(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    assert app.client.get("/").location == "/login"

    response = app.post("/login", email="boss@example.com", password="wrong password!")
    assert response.location == "/login"
    assert "The email address or password is incorrect." in app.text("/login")
    assert app.client.get("/").status_code == 302

    app.sign_in("boss@example.com")
    page = app.text("/")
    assert "You are signed in." in page
    assert "Signed in as boss@example.com" in page


def test_post_without_the_csrf_token_is_refused(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    form = {"email": "boss@example.com", "password": PASSWORD}
    assert app.client.post("/login", data=form).status_code == 400
    assert app.post("/login", csrf="forged", **form).status_code == 400
    assert app.client.get("/").location == "/login"


def test_google_sign_in_by_verified_email(app):
    app.auth.create_account(email="ann@example.com")
    response = app.flow("/login/google", app.google, email="ann@example.com")
    assert (response.status_code, response.location) == (302, "/")
    page = app.text("/")
    assert "You are signed in with Google." in page
    assert "Signed in as ann@example.com" in page
    assert "Unlink Google" in app.text("/profile")


def test_microsoft_refused_until_linked_from_the_profile(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.location == "/login"
    assert NOT_LINKED in app.text("/login")

    app.sign_in("boss@example.com")
    response = app.flow("/profile/link/microsoft", app.microsoft)
    assert (response.status_code, response.location) == (302, "/profile")
    page = app.text("/profile")
    assert "Your Microsoft account is now linked." in page
    assert "Unlink Microsoft" in page

    assert app.post("/logout").location == "/login"
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.location == "/"
    assert "Signed in as boss@example.com" in app.text("/")

    assert app.post("/profile/unlink/microsoft").location == "/profile"
    page = app.text("/profile")  # unlinking from this session keeps this session
    assert "Link Microsoft" in page
    assert ENDED not in page


def test_a_replayed_callback_is_refused(app):
    app.auth.create_account(email="ann@example.com")
    response = app.post("/login/google")
    callback = "/auth/callback?" + urlencode(app.google.authorize(response.location))
    assert app.client.get(callback).location == "/"
    assert app.post("/logout").status_code == 302
    assert app.client.get(callback).location == "/login"
    assert app.client.get("/").location == "/login"


def invite_link(app, email):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    assert app.post("/admin/invites", email=email).location == "/"
    page = app.text("/")
    url = re.search(rf"Invitation for {re.escape(email)}: (http://localhost/invite/\S+)<", page)
    assert url is not None, page
    assert app.post("/logout").location == "/login"
    return url.group(1).removeprefix("http://localhost")


def test_invitation_accepted_with_a_password(app):
    path = invite_link(app, "new@example.com")
    assert "Invitation for new@example.com" in app.text(path)

    assert app.post(f"{path}/password", password="short").location == path
    assert "at least" in app.text(path)

    response = app.post(f"{path}/password", password=PASSWORD, name="New")
    assert (response.status_code, response.location) == (302, "/")
    page = app.text("/")
    assert "Welcome! Your account is ready." in page
    assert "Signed in as new@example.com" in page

    assert app.post("/logout").status_code == 302
    assert app.client.get(path).location == "/login"
    assert "This invitation was already accepted." in app.text("/login")


def test_invitation_accepted_with_microsoft(app):
    path = invite_link(app, "new@example.com")
    response = app.flow(f"{path}/microsoft", app.microsoft)
    assert (response.status_code, response.location) == (302, "/")
    assert "Signed in as new@example.com" in app.text("/")

    assert app.post("/logout").status_code == 302
    assert app.flow("/login/microsoft", app.microsoft).location == "/"
    assert "Signed in as new@example.com" in app.text("/")


def test_unlinking_the_last_sign_in_method_is_refused(app):
    app.auth.create_account(email="ann@example.com")  # no password: Google is all she has
    assert app.flow("/login/google", app.google, email="ann@example.com").location == "/"
    response = app.post("/profile/unlink/google")
    assert response.location == "/profile"
    page = app.text("/profile")
    assert "You can't remove your only way to sign in." in page
    assert "Unlink Google" in page


def test_admin_consent_required_shows_the_consent_url(mock):
    app = start(mock, FakeMicrosoft(consent_required_tenants=[FakeMicrosoft.WORK_TENANT]))
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.status_code == 403
    page = html.unescape(response.get_data(as_text=True))
    assert "Your organization must approve this app" in page
    consent_url = "https://login.fake-microsoft.test/organizations/adminconsent?client_id="
    assert f'href="{consent_url}' in page


def test_a_disabled_account_loses_its_session_on_the_next_request(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    assert app.client.get("/").status_code == 200
    app.auth.disable_account(boss.id)
    assert app.client.get("/").location == "/login"
    assert ENDED in app.text("/login")
    app.auth.enable_account(boss.id)
    assert app.client.get("/profile").location == "/login"  # the session stays ended


def test_a_credential_change_elsewhere_ends_older_sessions(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    app.auth.passwords.change(boss.id, current=PASSWORD, new="another fine passphrase")
    assert app.client.get("/").location == "/login"
    assert ENDED in app.text("/login")


def test_logout(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    response = app.post("/logout")
    assert (response.status_code, response.location) == (302, "/login")
    assert app.client.get("/").location == "/login"
    assert app.client.get("/profile").location == "/login"


def glue_lines(path):
    """Lines of Python in `path`, not counting templates, the docstring, comments or blanks."""
    source = path.read_text()
    skipped = set()
    for node in ast.parse(source).body:
        strings = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        templates = isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "TEMPLATES"
        if strings or templates:
            skipped.update(range(node.lineno, node.end_lineno + 1))
    comments = {
        token.start[0]
        for token in tokenize.generate_tokens(iter(source.splitlines(keepends=True)).__next__)
        if token.type == tokenize.COMMENT and token.line.strip().startswith("#")
    }
    return sum(
        1
        for number, line in enumerate(source.splitlines(), start=1)
        if line.strip() and number not in skipped | comments
    )


def test_the_glue_stays_small():
    lines = glue_lines(Path(__file__).with_name("flask_example.py"))
    assert lines < 110, f"{lines} lines of glue"
