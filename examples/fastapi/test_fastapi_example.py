import html
import json
import re
import time
from base64 import b64decode, b64encode
from dataclasses import dataclass
from urllib.parse import urlencode

import pyotp
import pytest
import responses
from fastapi.testclient import TestClient
from fastapi_example import create_app
from itsdangerous import TimestampSigner

from bpart_auth import Auth, MemoryStore, SecondFactorPolicy
from bpart_auth.passkeys import RelyingParty
from bpart_auth.services.sessions import ACCOUNT_KEY
from bpart_auth.starlette import NOTICES_KEY
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft, SoftAuthenticator

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
        second_factor=SecondFactorPolicy(
            relying_party=RelyingParty("testserver", "Back office", [BASE])
        ),
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
    assert app.auth.passwords.sign_in("new@example.com", PASSWORD).name == "New"

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


# Second factors: an authenticator app (codes from pyotp), recovery codes, passkeys (a
# SoftAuthenticator answering the options the page's script would fetch).

SECOND_STEP = {**SAME_ORIGIN, "Referer": f"{BASE}/second-factor"}
WRONG_CODE = "That code didn't work. Check it and try again."
CODE_ITEM = r"<li><code>([\w-]+)</code></li>"


def enrol_totp(app, name="Phone"):
    """Add an authenticator app from the home page; its pyotp TOTP and the codes shown."""
    page = app.text("/second-factor/enrol")
    assert "<svg" in page
    secret = re.search(r'<code class="secret">(\w+)</code>', page).group(1)
    response = app.post("/second-factor/enrol", code=pyotp.TOTP(secret).now(), name=name)
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert "Authenticator app added." in page
    return pyotp.TOTP(secret), re.findall(CODE_ITEM, page)


def next_code(totp):
    """The next 30 s step's code: the one just used is refused (a replay)."""
    return totp.at(time.time() + 30)


def add_passkey(app, authenticator, name="Laptop"):
    options = app.post("/passkeys/options")
    assert options.headers["content-type"] == "application/json"
    credential = json.dumps(authenticator.create(options.text))
    return app.post("/passkeys", credential=credential, name=name)


def use_passkey(app, authenticator, **misbehave):
    options = app.post("/second-factor/passkey/options").text
    credential = json.dumps(authenticator.get(options, **misbehave))
    return app.post("/second-factor/passkey", headers=SECOND_STEP, credential=credential)


def sign_in_to_second_step(app, email="boss@example.com"):
    response = app.post("/login", email=email, password=PASSWORD)
    assert response.headers["location"] == "/second-factor"


def test_an_authenticator_app_enrolled_then_asked_at_every_sign_in(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    on_enrol = {**SAME_ORIGIN, "Referer": f"{BASE}/second-factor/enrol"}
    assert "Add an authenticator app" in app.text("/second-factor/enrol")
    response = app.post("/second-factor/enrol", headers=on_enrol, code="000000")
    assert response.headers["location"] == "/second-factor/enrol"
    assert WRONG_CODE in app.text("/second-factor/enrol")

    totp, codes = enrol_totp(app)
    assert len(codes) == 10
    page = app.text("/")
    assert "Phone (authenticator app)" in page
    assert "Recovery codes left: 10." in page
    assert codes[0] not in page  # shown once
    assert not any(codes[0] in str(value) for value in app.session().values())

    assert app.post("/logout").status_code == 303
    sign_in_to_second_step(app)
    assert app.signed_in_as() is None
    page = app.text("/second-factor")
    assert "One more step" in page
    assert "boss@example.com" in page
    assert "Use a passkey" not in page  # no passkey on this account

    response = app.post("/second-factor", headers=SECOND_STEP, code="123456")
    assert response.headers["location"] == "/second-factor"
    assert WRONG_CODE in app.text("/second-factor")
    assert app.post("/second-factor", code=next_code(totp)).headers["location"] == "/"
    assert "You are signed in." in app.text("/")
    assert app.signed_in_as() == "boss@example.com"


def test_a_recovery_code_signs_in_once(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    _, codes = enrol_totp(app)
    assert app.post("/logout").status_code == 303

    sign_in_to_second_step(app)
    assert app.post("/second-factor", code=codes[0]).headers["location"] == "/"
    assert "Recovery codes left: 9." in app.text("/")
    assert app.post("/logout").status_code == 303

    sign_in_to_second_step(app)
    assert app.post("/second-factor", headers=SECOND_STEP, code=codes[0]).status_code == 303
    assert WRONG_CODE in app.text("/second-factor")
    assert app.signed_in_as() is None


def test_new_recovery_codes_replace_the_old_ones(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    _, old = enrol_totp(app)
    new = re.findall(CODE_ITEM, html.unescape(app.post("/second-factor/recovery-codes").text))
    assert len(new) == 10
    assert not set(new) & set(old)
    assert app.post("/logout").status_code == 303
    sign_in_to_second_step(app)
    app.post("/second-factor", headers=SECOND_STEP, code=old[0])
    assert WRONG_CODE in app.text("/second-factor")
    assert app.post("/second-factor", code=new[0]).headers["location"] == "/"
    assert app.signed_in_as() == "boss@example.com"


def test_a_factor_removed_from_the_home_page(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    enrol_totp(app)
    factor_id = re.search(r'action="/second-factor/([\w-]+)/remove"', app.text("/")).group(1)
    assert app.post(f"/second-factor/{factor_id}/remove").headers["location"] == "/"
    page = app.text("/")
    assert "Phone removed." in page
    assert "(authenticator app)" not in page
    assert app.signed_in_as() == "boss@example.com"  # this session goes on
    assert app.post("/logout").status_code == 303
    app.sign_in("boss@example.com")  # no second step any more


def test_a_passkey_added_then_used_as_the_second_step(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    authenticator = SoftAuthenticator(origin=BASE, rp_id="testserver")
    response = add_passkey(app, authenticator)
    assert response.status_code == 200  # its first factor: the recovery codes, once
    assert "Passkey added." in response.text
    assert len(re.findall(CODE_ITEM, response.text)) == 10
    assert "Laptop (passkey)" in app.text("/")

    assert app.post("/logout").status_code == 303
    sign_in_to_second_step(app)
    assert "Use a passkey" in app.text("/second-factor")
    assert use_passkey(app, authenticator).headers["location"] == "/"
    assert "You are signed in." in app.text("/")
    assert app.signed_in_as() == "boss@example.com"


def test_a_passkey_without_a_name_gets_one(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    add_passkey(app, SoftAuthenticator(origin=BASE, rp_id="testserver"), name="")
    assert "Passkey (passkey)" in app.text("/")


def test_a_passkey_answer_for_another_site_is_refused(app):
    app.auth.create_account(email="boss@example.com", password=PASSWORD)
    app.sign_in("boss@example.com")
    authenticator = SoftAuthenticator(origin=BASE, rp_id="testserver")
    assert add_passkey(app, authenticator).status_code == 200
    assert app.post("/logout").status_code == 303
    sign_in_to_second_step(app)
    # The browser reports the page's origin: a look-alike site relaying the ceremony.
    response = use_passkey(app, authenticator, origin="https://evil.test")
    assert response.headers["location"] == "/second-factor"
    assert "That passkey didn't work." in app.text("/second-factor")
    assert app.signed_in_as() is None


def test_a_provider_sign_in_also_asks_for_the_second_factor(app):
    app.auth.create_account(email="ann@example.com", password=PASSWORD)
    app.sign_in("ann@example.com")
    totp, _ = enrol_totp(app)
    assert app.post("/logout").status_code == 303
    response = app.flow("/login/google", app.google, email="ann@example.com")
    assert response.headers["location"] == "/second-factor"
    assert app.signed_in_as() is None
    assert app.post("/second-factor", code=next_code(totp)).headers["location"] == "/"
    assert app.signed_in_as() == "ann@example.com"


def test_the_second_step_needs_a_pending_sign_in(app):
    assert app.client.get("/second-factor").headers["location"] == "/"
    assert app.post("/second-factor", code="123456").headers["location"] == "/"
    assert "Please sign in" in app.text("/")
    assert app.client.get("/second-factor/enrol").headers["location"] == "/"
    assert app.post("/passkeys/options").headers["location"] == "/"


@pytest.mark.parametrize(
    "action", ["/second-factor", "/passkeys/options", "/second-factor/recovery-codes"]
)
def test_second_factor_posts_from_elsewhere_are_refused(app, action):
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    response = app.post(action, headers=cross_site, code="123456")
    assert (response.status_code, response.text) == (403, REFUSED)
