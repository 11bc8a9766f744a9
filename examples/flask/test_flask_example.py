import html
import re
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import responses
from flask.testing import FlaskClient
from flask_example import create_app

from bpart_auth import Auth, MemoryStore
from bpart_auth.services.sessions import ACCOUNT_KEY
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft

SECRET = "a test secret key, 32 bytes long!"
PASSWORD = "correct horse battery staple"
NOT_LINKED = "This Microsoft account is not linked to any user here."
ENDED = "Your session has ended. Please sign in again."
REFUSED = "This request did not come from this site."
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}  # what a browser sends with the page's forms


@dataclass
class App:
    auth: Auth
    google: FakeGoogle
    microsoft: FakeMicrosoft
    client: FlaskClient

    def post(self, url, headers=SAME_ORIGIN, **form):
        """POST a form as the page's own form would be."""
        return self.client.post(url, data=form, headers=headers)

    def text(self, url):
        return html.unescape(self.client.get(url, follow_redirects=True).get_data(as_text=True))

    def signed_in_as(self):
        """The email the home page shows as signed in, or None for the sign-in page."""
        found = re.search(r"Signed in as (\S+)\.", self.text("/"))
        return found and found.group(1)

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
        redirect_uri="http://localhost/auth/callback",  # the test client's host
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
    assert app.signed_in_as() is None

    response = app.post("/login", email="boss@example.com", password="wrong password!")
    assert response.location == "/"
    assert "The email address or password is incorrect." in app.text("/")
    assert app.signed_in_as() is None

    app.sign_in("boss@example.com")
    assert "You are signed in." in app.text("/")
    assert app.signed_in_as() == "boss@example.com"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="sibling-subdomain"),
        pytest.param({"Origin": "https://evil.test"}, id="foreign-origin"),
        pytest.param({"Origin": "null"}, id="opaque-origin"),
        pytest.param({}, id="no-browser-headers"),
    ],
)
def test_a_post_from_elsewhere_is_refused_even_the_sign_in_form(app, headers):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    form = {"email": "boss@example.com", "password": PASSWORD}
    response = app.post("/login", headers=headers, **form)  # login CSRF
    assert (response.status_code, response.get_data(as_text=True)) == (403, REFUSED)
    assert app.signed_in_as() is None


def test_a_post_from_a_signed_in_page_elsewhere_changes_nothing(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    assert app.post("/invites", headers=cross_site, email="evil@example.com").status_code == 403
    assert app.post("/logout", headers=cross_site).status_code == 403
    assert app.auth.invites.pending() == []
    assert app.signed_in_as() == "boss@example.com"
    # An older browser without Sec-Fetch-Site: its Origin must be this site's.
    response = app.post("/logout", headers={"Origin": "http://localhost"})
    assert (response.status_code, app.signed_in_as()) == (302, None)
    assert app.auth.get_account(boss.id).email == "boss@example.com"


def test_google_sign_in_by_verified_email(app):
    app.auth.create_account(email="ann@example.com")
    response = app.flow("/login/google", app.google, email="ann@example.com")
    assert (response.status_code, response.location) == (302, "/")
    page = app.text("/")
    assert "You are signed in with Google." in page
    assert "Signed in as ann@example.com" in page
    assert "Unlink Google" in page


def test_microsoft_refused_until_linked_from_the_home_page(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.location == "/"
    assert NOT_LINKED in app.text("/")
    assert app.signed_in_as() is None

    app.sign_in("boss@example.com")
    response = app.flow("/link/microsoft", app.microsoft)
    assert (response.status_code, response.location) == (302, "/")
    page = app.text("/")  # the link stamped the credentials; this session goes on
    assert "Your Microsoft account is now linked." in page
    assert "Unlink Microsoft" in page

    assert app.post("/logout").location == "/"
    assert app.signed_in_as() is None
    assert app.flow("/login/microsoft", app.microsoft).location == "/"
    assert app.signed_in_as() == "boss@example.com"

    assert app.post("/unlink/microsoft").location == "/"
    page = app.text("/")  # unlinking from this session keeps this session
    assert "Link Microsoft" in page
    assert ENDED not in page
    assert app.signed_in_as() == "boss@example.com"


def test_unlinking_ends_the_accounts_other_sessions(mock):
    first = start(mock)
    first.auth.create_account(email="boss@example.com", password=PASSWORD)
    first.sign_in("boss@example.com")
    assert first.flow("/link/microsoft", first.microsoft).location == "/"
    second = App(first.auth, first.google, first.microsoft, first.client.application.test_client())
    second.sign_in("boss@example.com")

    assert first.post("/unlink/microsoft").location == "/"
    assert first.signed_in_as() == "boss@example.com"
    assert ENDED in second.text("/")
    assert second.signed_in_as() is None


def test_a_replayed_callback_is_refused(app):
    app.auth.create_account(email="ann@example.com")
    response = app.post("/login/google")
    callback = "/auth/callback?" + urlencode(app.google.authorize(response.location))
    assert app.client.get(callback).location == "/"
    assert app.post("/logout").status_code == 302
    assert app.client.get(callback).location == "/"
    assert "Your sign-in took too long or was interrupted." in app.text("/")
    assert app.signed_in_as() is None


def test_two_tabs_each_finish_their_own_flow(app):
    app.auth.create_account(email="ann@example.com", password=PASSWORD)
    app.sign_in("ann@example.com")
    google_tab = app.post("/link/google").location
    microsoft_tab = app.post("/link/microsoft").location  # the first tab's flow stays
    response = app.client.get("/auth/callback?" + urlencode(app.microsoft.authorize(microsoft_tab)))
    assert response.location == "/"
    assert "Your Microsoft account is now linked." in app.text("/")
    response = app.client.get(
        "/auth/callback?" + urlencode(app.google.authorize(google_tab, email="ann@example.com"))
    )
    assert response.location == "/"
    page = app.text("/")
    assert "Your Google account is now linked." in page
    assert "Unlink Google" in page
    assert "Unlink Microsoft" in page
    assert app.signed_in_as() == "ann@example.com"


def test_a_flow_begun_in_another_browser_is_refused(app):
    app.auth.create_account(email="ann@example.com")
    attacker = app.client.application.test_client()
    start = attacker.post("/login/google", headers=SAME_ORIGIN).location
    callback = "/auth/callback?" + urlencode(app.google.authorize(start))
    assert app.client.get(callback).location == "/"  # the victim's browser: refused
    assert "Your sign-in took too long or was interrupted." in app.text("/")
    assert app.signed_in_as() is None


def invite_link(app, email):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    assert app.post("/invites", email=email).location == "/"
    page = app.text("/")
    url = re.search(rf"Invitation for {re.escape(email)}: (http://localhost/invite/\S+)<", page)
    assert url is not None, page
    assert app.post("/logout").location == "/"
    return url.group(1).removeprefix("http://localhost")


def test_invitations_need_a_signed_in_account(app):
    response = app.post("/invites", email="new@example.com")
    assert response.location == "/"
    assert app.auth.invites.pending() == []


def test_invitation_accepted_with_a_password(app):
    path = invite_link(app, "new@example.com")
    assert "Invitation for new@example.com" in app.text(path)

    on_the_page = {**SAME_ORIGIN, "Referer": f"http://localhost{path}"}
    assert app.post(f"{path}/password", headers=on_the_page, password="short").location == path
    assert "at least" in app.text(path)

    response = app.post(f"{path}/password", password=PASSWORD, name="New")
    assert (response.status_code, response.location) == (302, "/")
    assert "Welcome! Your account is ready." in app.text("/")
    assert app.signed_in_as() == "new@example.com"

    assert app.post("/logout").status_code == 302
    assert app.client.get(path).location == "/"
    assert "This invitation was already accepted." in app.text("/")


def test_invitation_accepted_with_microsoft(app):
    path = invite_link(app, "new@example.com")
    response = app.flow(f"{path}/microsoft", app.microsoft)
    assert (response.status_code, response.location) == (302, "/")
    assert app.signed_in_as() == "new@example.com"

    assert app.post("/logout").status_code == 302
    assert app.flow("/login/microsoft", app.microsoft).location == "/"
    assert app.signed_in_as() == "new@example.com"


def test_unlinking_the_last_sign_in_method_is_refused(app):
    app.auth.create_account(email="ann@example.com")  # no password: Google is all she has
    assert app.flow("/login/google", app.google, email="ann@example.com").location == "/"
    response = app.post("/unlink/google")
    assert response.location == "/"
    page = app.text("/")
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
    assert app.signed_in_as() == "boss@example.com"
    app.auth.disable_account(boss.id)
    assert ENDED in app.text("/")
    assert app.signed_in_as() is None
    app.auth.enable_account(boss.id)
    assert app.signed_in_as() is None  # the session stays ended
    assert app.post("/invites", email="new@example.com").location == "/"
    assert app.auth.invites.pending() == []


def test_a_credential_change_elsewhere_ends_older_sessions(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    app.auth.passwords.change(boss.id, current=PASSWORD, new="another fine passphrase")
    assert ENDED in app.text("/")
    assert app.signed_in_as() is None


def test_every_sign_in_starts_a_fresh_session(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    with app.client.session_transaction() as session:
        session["planted"] = "by someone else before the sign-in"
    app.sign_in("boss@example.com")
    with app.client.session_transaction() as session:
        assert "planted" not in session
        assert set(session) == {ACCOUNT_KEY, "_flashes"}


def test_logout(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    response = app.post("/logout")
    assert (response.status_code, response.location) == (302, "/")
    assert app.signed_in_as() is None
    with app.client.session_transaction() as session:
        assert dict(session) == {}
