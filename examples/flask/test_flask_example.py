import html
import json
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import pyotp
import pytest
import responses
from flask.testing import FlaskClient
from flask_example import create_app

from bpart_auth import Auth, MemoryStore, SecondFactorPolicy
from bpart_auth.passkeys import RelyingParty
from bpart_auth.services.sessions import ACCOUNT_KEY
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft, SoftAuthenticator

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
        second_factor=SecondFactorPolicy(
            relying_party=RelyingParty("localhost", "Back office", ["http://localhost"])
        ),
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


# Second factors: an authenticator app (codes from pyotp), recovery codes, passkeys (a
# SoftAuthenticator answering the options the page's script would fetch).

SECOND_STEP = {**SAME_ORIGIN, "Referer": "http://localhost/second-factor"}
WRONG_CODE = "That code didn't work. Check it and try again."


def enrol_totp(app):
    """Add an authenticator app from the home page; its pyotp TOTP and the codes shown."""
    page = app.text("/second-factor/enrol")
    assert "<svg" in page
    secret = re.search(r'<code class="secret">(\w+)</code>', page).group(1)
    response = app.post("/second-factor/enrol", code=pyotp.TOTP(secret).now(), name="Phone")
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert "Authenticator app added." in page
    codes = re.findall(r"<li><code>([\w-]+)</code></li>", page)
    return pyotp.TOTP(secret), codes


def next_code(totp):
    """The next 30 s step's code: the one just used is refused (a replay)."""
    return totp.at(time.time() + 30)


def add_passkey(app, authenticator):
    options = app.post("/passkeys/options")
    assert options.content_type == "application/json"
    credential = json.dumps(authenticator.create(options.get_data(as_text=True)))
    return app.post("/passkeys", credential=credential, name="Laptop")


def use_passkey(app, authenticator, **misbehave):
    options = app.post("/second-factor/passkey/options").get_data(as_text=True)
    credential = json.dumps(authenticator.get(options, **misbehave))
    return app.post("/second-factor/passkey", headers=SECOND_STEP, credential=credential)


def test_an_authenticator_app_enrolled_then_asked_at_every_sign_in(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    on_enrol = {**SAME_ORIGIN, "Referer": "http://localhost/second-factor/enrol"}
    assert "Add an authenticator app" in app.text("/second-factor/enrol")
    response = app.post("/second-factor/enrol", headers=on_enrol, code="000000")
    assert response.location == "/second-factor/enrol"
    assert WRONG_CODE in app.text("/second-factor/enrol")

    totp, codes = enrol_totp(app)
    assert len(codes) == 10
    page = app.text("/")
    assert "Phone (authenticator app)" in page
    assert "Recovery codes left: 10." in page
    assert codes[0] not in page  # shown once

    assert app.post("/logout").location == "/"
    response = app.post("/login", email="boss@example.com", password=PASSWORD)
    assert response.location == "/second-factor"
    assert app.signed_in_as() is None
    page = app.text("/second-factor")
    assert "One more step" in page
    assert "boss@example.com" in page
    assert "Use a passkey" not in page  # no passkey on this account

    response = app.post("/second-factor", headers=SECOND_STEP, code="123456")
    assert response.location == "/second-factor"
    assert WRONG_CODE in app.text("/second-factor")
    assert app.post("/second-factor", code=next_code(totp)).location == "/"
    assert "You are signed in." in app.text("/")
    assert app.signed_in_as() == "boss@example.com"


def test_a_recovery_code_signs_in_once(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    _, codes = enrol_totp(app)
    assert app.post("/logout").location == "/"

    assert app.post("/login", email="boss@example.com", password=PASSWORD).status_code == 302
    assert app.post("/second-factor", code=codes[0]).location == "/"
    assert "Recovery codes left: 9." in app.text("/")
    assert app.post("/logout").location == "/"

    assert app.post("/login", email="boss@example.com", password=PASSWORD).status_code == 302
    assert app.post("/second-factor", headers=SECOND_STEP, code=codes[0]).status_code == 302
    assert WRONG_CODE in app.text("/second-factor")
    assert app.signed_in_as() is None


def test_new_recovery_codes_replace_the_old_ones(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    _, old = enrol_totp(app)
    response = app.post("/second-factor/recovery-codes")
    page = html.unescape(response.get_data(as_text=True))
    new = re.findall(r"<li><code>([\w-]+)</code></li>", page)
    assert len(new) == 10
    assert not set(new) & set(old)
    assert app.post("/logout").location == "/"
    app.post("/login", email="boss@example.com", password=PASSWORD)
    assert app.post("/second-factor", code=old[0]).location == "/"  # refused: back to "/"...
    assert app.signed_in_as() is None  # ...the sign-in page
    assert app.post("/second-factor", code=new[0]).location == "/"
    assert app.signed_in_as() == "boss@example.com"


def test_a_factor_removed_from_the_home_page(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    enrol_totp(app)
    factor_id = re.search(r'action="/second-factor/([\w-]+)/remove"', app.text("/")).group(1)
    assert app.post(f"/second-factor/{factor_id}/remove").location == "/"
    page = app.text("/")
    assert "Phone removed." in page
    assert "(authenticator app)" not in page
    assert app.signed_in_as() == "boss@example.com"  # this session goes on
    assert app.post("/logout").location == "/"
    app.sign_in("boss@example.com")  # no second step any more


def test_a_passkey_added_then_used_as_the_second_step(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    authenticator = SoftAuthenticator(origin="http://localhost", rp_id="localhost")
    response = add_passkey(app, authenticator)
    assert response.status_code == 200  # its first factor: the recovery codes, once
    page = html.unescape(response.get_data(as_text=True))
    assert "Passkey added." in page
    assert len(re.findall(r"<li><code>", page)) == 10
    assert "Laptop (passkey)" in app.text("/")

    assert app.post("/logout").location == "/"
    assert app.post("/login", email="boss@example.com", password=PASSWORD).status_code == 302
    assert "Use a passkey" in app.text("/second-factor")
    assert use_passkey(app, authenticator).location == "/"
    assert "You are signed in." in app.text("/")
    assert app.signed_in_as() == "boss@example.com"


def test_a_passkey_of_another_site_is_refused(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    authenticator = SoftAuthenticator(origin="http://localhost", rp_id="localhost")
    assert add_passkey(app, authenticator).status_code == 200
    assert app.post("/logout").location == "/"
    app.post("/login", email="boss@example.com", password=PASSWORD)
    # The browser reports the page's origin: a look-alike site relaying the ceremony.
    response = use_passkey(app, authenticator, origin="https://evil.test")
    assert response.location == "/second-factor"
    assert "That passkey didn't work." in app.text("/second-factor")
    assert app.signed_in_as() is None


def test_a_provider_sign_in_also_asks_for_the_second_factor(app):
    app.auth.create_account(email="ann@example.com", password=PASSWORD)
    app.sign_in("ann@example.com")
    totp, _ = enrol_totp(app)
    assert app.post("/logout").location == "/"
    response = app.flow("/login/google", app.google, email="ann@example.com")
    assert response.location == "/second-factor"
    assert app.signed_in_as() is None
    assert app.post("/second-factor", code=next_code(totp)).location == "/"
    assert app.signed_in_as() == "ann@example.com"


def test_the_second_step_needs_a_pending_sign_in(app):
    assert app.client.get("/second-factor").location == "/"
    assert app.post("/second-factor", code="123456").location == "/"
    assert "Please sign in" in app.text("/")
    assert app.client.get("/second-factor/enrol").location == "/"
    assert app.post("/passkeys/options").location == "/"


@pytest.mark.parametrize(
    "action", ["/second-factor", "/passkeys/options", "/second-factor/recovery-codes"]
)
def test_second_factor_posts_from_elsewhere_are_refused(app, action):
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    response = app.post(action, headers=cross_site, code="123456")
    assert (response.status_code, response.get_data(as_text=True)) == (403, REFUSED)
