import html
import json
import re
from base64 import b64decode, b64encode
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
import responses
from fastapi.testclient import TestClient
from fastapi_example import create_app
from itsdangerous import TimestampSigner

from bpart_auth import Auth, MemoryStore
from bpart_auth.services.sessions import ACCOUNT_KEY
from bpart_auth.starlette import NOTICES_KEY
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft

SECRET = "a test secret key, 32 bytes long!"
SESSION_KEY = "a session key"
PASSWORD = "correct horse battery staple"
BASE = "https://testserver"  # https_only session cookies: the tests speak HTTPS
NOT_LINKED = "This Microsoft account is not linked to any user here."
ENDED = "Your session has ended. Please sign in again."
REFUSED = "This request did not come from this site."
INTERRUPTED = "Your sign-in took too long or was interrupted."
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}  # what a browser sends with the page's forms


@dataclass
class App:
    auth: Auth
    google: FakeGoogle
    microsoft: FakeMicrosoft
    client: TestClient

    def browser(self):
        """Another browser on the same app: its own cookies."""
        return App(self.auth, self.google, self.microsoft, client(self.client.app))

    def post(self, url, headers=SAME_ORIGIN, **form):
        """POST a form as the page's own form would be."""
        return self.client.post(url, data=form, headers=headers)

    def text(self, url):
        return html.unescape(self.client.get(url, follow_redirects=True).text)

    def signed_in_as(self):
        """The email the home page shows as signed in, or None for the sign-in page."""
        found = re.search(r"Signed in as (\S+)\.", self.text("/"))
        return found and found.group(1)

    def sign_in(self, email, password=PASSWORD):
        response = self.post("/login", email=email, password=password)
        assert (response.status_code, response.headers["location"]) == (303, "/")

    def flow(self, start_url, fake, **claims):
        """POST `start_url`, play the user at the fake provider, GET the callback."""
        response = self.post(start_url)
        assert response.status_code == 303, response.text
        params = fake.authorize(response.headers["location"], **claims)
        return self.client.get("/auth/callback?" + urlencode(params))

    def session(self):
        """What the session cookie holds (Starlette's: signed base64 JSON)."""
        cookie = self.client.cookies.get("session")
        if cookie is None:
            return {}
        return json.loads(b64decode(TimestampSigner(SESSION_KEY).unsign(cookie)))

    def plant(self, data):
        """Set a session cookie holding `data`, as a fixation attack would."""
        signed = TimestampSigner(SESSION_KEY).sign(b64encode(json.dumps(data).encode()))
        self.client.cookies.set("session", signed.decode(), domain="testserver.local")


def client(app):
    return TestClient(app, base_url=BASE, follow_redirects=False)


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
        redirect_uri=f"{BASE}/auth/callback",
        password_hashing=CHEAP_FOR_TESTS,
    )
    return App(auth, google, microsoft, client(create_app(auth, secret_key=SESSION_KEY)))


@pytest.fixture
def app(mock, fakes):
    return start(mock, *fakes)


def test_password_sign_in_and_wrong_password(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    assert app.signed_in_as() is None

    on_the_page = {**SAME_ORIGIN, "Referer": f"{BASE}/"}
    response = app.post("/login", headers=on_the_page, email="boss@example.com", password="nope")
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert "The email address or password is incorrect." in app.text("/")
    assert app.signed_in_as() is None

    response = app.post("/login", email="boss@example.com", password=PASSWORD)
    cookie = response.headers["set-cookie"].lower()
    assert all(flag in cookie for flag in ("httponly", "samesite=lax", "secure"))
    page = app.text("/")
    assert "You are signed in." in page
    assert "You are signed in." not in app.text("/")  # a notice is shown once
    assert app.signed_in_as() == "boss@example.com"


def test_too_many_wrong_passwords_are_throttled(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    for _ in range(5):
        app.post("/login", email="boss@example.com", password="nope")
    app.post("/login", email="boss@example.com", password=PASSWORD)
    assert "Too many" in app.text("/")
    assert app.signed_in_as() is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="sibling-subdomain"),
        pytest.param({"Origin": "https://evil.test"}, id="foreign-origin"),
        pytest.param({"Origin": "http://testserver"}, id="origin-over-http"),
        pytest.param({"Origin": "null"}, id="opaque-origin"),
        pytest.param({}, id="no-browser-headers"),
    ],
)
def test_a_post_from_elsewhere_is_refused_even_the_sign_in_form(app, headers):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    form = {"email": "boss@example.com", "password": PASSWORD}
    response = app.post("/login", headers=headers, **form)  # login CSRF
    assert (response.status_code, response.text) == (403, REFUSED)
    assert app.signed_in_as() is None


def test_a_forged_post_changes_nothing_for_a_signed_in_user(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    assert app.post("/invites", headers=cross_site, email="evil@example.com").status_code == 403
    assert app.post("/logout", headers=cross_site).status_code == 403
    assert app.post("/unlink/google", headers=cross_site).status_code == 403
    assert app.auth.invites.pending() == []
    assert app.signed_in_as() == "boss@example.com"
    # An older browser without Sec-Fetch-Site: its Origin must be this site's.
    response = app.post("/logout", headers={"Origin": BASE})
    assert (response.status_code, app.signed_in_as()) == (303, None)
    assert app.auth.get_account(boss.id).email == "boss@example.com"


def test_google_sign_in_by_verified_email(app):
    app.auth.create_account(email="ann@example.com")
    response = app.flow("/login/google", app.google, email="ann@example.com")
    assert (response.status_code, response.headers["location"]) == (303, "/")
    page = app.text("/")
    assert "You are signed in with Google." in page
    assert "Signed in as ann@example.com" in page
    assert "Unlink Google" in page


def test_an_unknown_provider_is_404(app):
    assert app.post("/login/github").status_code == 404
    assert app.post("/invite/some-token/github").status_code == 404


def test_microsoft_refused_until_linked_from_the_home_page(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.headers["location"] == "/"
    assert NOT_LINKED in app.text("/")
    assert app.signed_in_as() is None

    app.sign_in("boss@example.com")
    response = app.flow("/link/microsoft", app.microsoft)
    assert (response.status_code, response.headers["location"]) == (303, "/")
    page = app.text("/")  # the link stamped the credentials; this session goes on
    assert "Your Microsoft account is now linked." in page
    assert "Unlink Microsoft" in page

    assert app.post("/logout").headers["location"] == "/"
    assert app.signed_in_as() is None
    assert app.flow("/login/microsoft", app.microsoft).headers["location"] == "/"
    assert app.signed_in_as() == "boss@example.com"

    assert app.post("/unlink/microsoft").headers["location"] == "/"
    page = app.text("/")  # unlinking from this session keeps this session
    assert "Link Microsoft" in page
    assert ENDED not in page
    assert app.signed_in_as() == "boss@example.com"


def test_linking_needs_a_signed_in_account(app):
    response = app.post("/link/google")
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert "Please sign in first." in app.text("/")


def test_unlinking_ends_the_accounts_other_sessions(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    assert app.flow("/link/microsoft", app.microsoft).headers["location"] == "/"
    second = app.browser()
    second.sign_in("boss@example.com")

    assert app.post("/unlink/microsoft").headers["location"] == "/"
    assert app.signed_in_as() == "boss@example.com"
    assert ENDED in second.text("/")
    assert second.signed_in_as() is None


def test_a_replayed_callback_is_refused(app):
    app.auth.create_account(email="ann@example.com")
    response = app.post("/login/google")
    params = app.google.authorize(response.headers["location"], email="ann@example.com")
    callback = "/auth/callback?" + urlencode(params)
    assert app.client.get(callback).headers["location"] == "/"
    assert app.post("/logout").status_code == 303
    assert app.client.get(callback).headers["location"] == "/"
    assert INTERRUPTED in app.text("/")
    assert app.signed_in_as() is None


def test_two_tabs_each_finish_their_own_flow(app):
    app.auth.create_account(email="ann@example.com", password=PASSWORD)
    app.sign_in("ann@example.com")
    google_tab = app.post("/link/google").headers["location"]
    microsoft_tab = app.post("/link/microsoft").headers["location"]  # the first tab's stays
    params = app.microsoft.authorize(microsoft_tab)
    assert app.client.get("/auth/callback?" + urlencode(params)).headers["location"] == "/"
    assert "Your Microsoft account is now linked." in app.text("/")
    params = app.google.authorize(google_tab, email="ann@example.com")
    assert app.client.get("/auth/callback?" + urlencode(params)).headers["location"] == "/"
    page = app.text("/")
    assert "Your Google account is now linked." in page
    assert "Unlink Google" in page
    assert "Unlink Microsoft" in page
    assert app.signed_in_as() == "ann@example.com"


def test_a_flow_begun_in_another_browser_is_refused(app):
    app.auth.create_account(email="ann@example.com")
    attacker = app.browser()
    begun = attacker.post("/login/google").headers["location"]
    callback = "/auth/callback?" + urlencode(app.google.authorize(begun))
    assert app.client.get(callback).headers["location"] == "/"  # the victim's browser
    assert INTERRUPTED in app.text("/")
    assert app.signed_in_as() is None


def invite_link(app, email):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    assert app.post("/invites", email=email).headers["location"] == "/"
    page = app.text("/")
    url = re.search(rf"Invitation for {re.escape(email)}: ({BASE}/invite/\S+)<", page)
    assert url is not None, page
    assert app.post("/logout").headers["location"] == "/"
    return url.group(1).removeprefix(BASE)


def test_invitations_need_a_signed_in_account(app):
    response = app.post("/invites", email="new@example.com")
    assert response.headers["location"] == "/"
    assert "Please sign in first." in app.text("/")
    assert app.auth.invites.pending() == []


def test_invitation_accepted_with_a_password(app):
    path = invite_link(app, "new@example.com")
    assert "Invitation for new@example.com" in app.text(path)

    on_the_page = {**SAME_ORIGIN, "Referer": f"{BASE}{path}"}
    response = app.post(f"{path}/password", headers=on_the_page, password="short")
    assert response.headers["location"] == path  # back to the form, with the reason
    assert "at least" in app.text(path)

    response = app.post(f"{path}/password", password=PASSWORD, name="New")
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert "Welcome! Your account is ready." in app.text("/")
    assert app.signed_in_as() == "new@example.com"
    assert app.auth.sign_in_with_password("new@example.com", PASSWORD).name == "New"

    assert app.post("/logout").status_code == 303
    assert app.client.get(path).headers["location"] == "/"
    assert "This invitation was already accepted." in app.text("/")


def test_invitation_accepted_with_microsoft(app):
    path = invite_link(app, "new@example.com")
    response = app.flow(f"{path}/microsoft", app.microsoft)
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert "Welcome! Your account is ready" in app.text("/")
    assert app.signed_in_as() == "new@example.com"

    assert app.post("/logout").status_code == 303
    assert app.flow("/login/microsoft", app.microsoft).headers["location"] == "/"
    assert app.signed_in_as() == "new@example.com"


def test_unlinking_the_last_sign_in_method_is_refused(app):
    app.auth.create_account(email="ann@example.com")  # no password: Google is all she has
    assert app.flow("/login/google", app.google, email="ann@example.com").status_code == 303
    response = app.post("/unlink/google")
    assert response.headers["location"] == "/"
    page = app.text("/")
    assert "You can't remove your only way to sign in." in page
    assert "Unlink Google" in page


def test_admin_consent_required_shows_the_consent_url(mock, fakes):
    blocked = FakeMicrosoft(consent_required_tenants=[FakeMicrosoft.WORK_TENANT])
    app = start(mock, fakes[0], blocked)
    response = app.flow("/login/microsoft", app.microsoft)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    page = html.unescape(response.text)
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
    assert app.post("/invites", email="new@example.com").headers["location"] == "/"
    assert app.auth.invites.pending() == []


def test_a_credential_change_elsewhere_ends_older_sessions(app):
    boss = app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    app.auth.passwords.change(boss.id, current=PASSWORD, new="another fine passphrase")
    assert ENDED in app.text("/")
    assert app.signed_in_as() is None


def test_every_sign_in_starts_a_fresh_session(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.plant({"planted": "by someone else before the sign-in"})
    assert app.session() == {"planted": "by someone else before the sign-in"}
    app.sign_in("boss@example.com")
    assert set(app.session()) == {ACCOUNT_KEY, NOTICES_KEY}


def test_logout(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    response = app.post("/logout")
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert app.signed_in_as() is None
    assert app.session() == {}
