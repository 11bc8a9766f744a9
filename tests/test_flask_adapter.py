"""bpart_auth.flask on a tiny app, with the fake providers: what `FlaskAuth` does for an app."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from urllib.parse import urlencode

import pytest
from flask import Flask, g, get_flashed_messages, jsonify, request

from bpart_auth import (
    AccountDisabled,
    Auth,
    ConfigurationError,
    IdentityNotLinked,
    InvalidFlowState,
    LastSignInMethod,
    MemoryStore,
    SignInRequired,
)
from bpart_auth.flask import FORGED_REQUEST, SESSION_ENDED, FlaskAuth, login_required
from bpart_auth.services.sessions import ACCOUNT_KEY, FLOWS_KEY

PASSWORD = "correct horse battery staple"
HERE = "http://localhost"  # the test client's origin, and the app's
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}  # what a browser sends with the app's forms
OID = "oid-ann"


@pytest.fixture
def auth(auth_with_fakes):
    return auth_with_fakes(redirect_uri=f"{HERE}/callback")


@pytest.fixture
def ann(auth):
    return auth.create_account(email="ann@example.com", password=PASSWORD)


def make_app(auth: Auth, **options) -> Flask:
    """A tiny app: every helper of `FlaskAuth` behind a route."""
    app = Flask("adapter_under_test")
    app.secret_key = "a Flask session key"
    app.testing = True
    bpart = FlaskAuth(auth, app, login_url="/login", home_url="/home", **options)

    @app.route("/whoami", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def whoami():
        return g.account.email if g.account else "nobody"

    @app.get("/flashes")
    def flashes():
        return jsonify(get_flashed_messages(with_categories=True))

    @app.post("/password")
    def password():
        account = auth.passwords.sign_in(request.form["email"], request.form["password"])
        return bpart.sign_in(account, "Signed in.")

    @app.post("/begin/<intent>/<provider>")
    def begin(intent, provider):
        begin = {"sign_in": bpart.sign_in_with, "link": bpart.link}[intent]
        return begin(provider, return_to=request.form.get("return_to"))

    app.get("/callback")(bpart.complete)
    app.post("/unlink/<provider>")(bpart.unlink)

    @app.post("/logout")
    def logout():
        return bpart.sign_out("Signed out.")

    @app.get("/private")
    @login_required
    def private():
        return "for the signed in"

    @app.route("/refuse", methods=["GET", "POST"])
    def refuse():
        raise AccountDisabled

    return app


@pytest.fixture
def app(auth):
    return make_app(auth)


@pytest.fixture
def client(app):
    return app.test_client()


def flashes(client):
    return [tuple(pair) for pair in client.get("/flashes").get_json()]


def sign_in(client, email="ann@example.com"):
    form = {"email": email, "password": PASSWORD}
    response = client.post("/password", data=form, headers=SAME_ORIGIN)
    assert (response.status_code, response.location) == (302, "/home")


def begin(client, intent, provider, return_to=None):
    form = {"return_to": return_to} if return_to else {}
    response = client.post(f"/begin/{intent}/{provider}", data=form, headers=SAME_ORIGIN)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.location


def callback(client, params):
    return client.get("/callback?" + urlencode(params))


# The guard: forged requests


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="same-site"),
        pytest.param({"Origin": "https://evil.test"}, id="origin-mismatch"),
        pytest.param({"Origin": "http://localhost:8080"}, id="origin-other-port"),
        pytest.param({}, id="no-headers"),
    ],
)
def test_a_cross_origin_unsafe_request_is_refused_before_the_view(client, ann, method, headers):
    sign_in(client)
    response = client.open("/whoami", method=method, headers=headers)
    assert (response.status_code, response.get_data(as_text=True)) == (403, FORGED_REQUEST)
    assert response.mimetype == "text/plain"


def test_a_forged_sign_in_or_sign_out_changes_nothing(client, ann):
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    form = {"email": "ann@example.com", "password": PASSWORD}
    assert client.post("/password", data=form, headers=cross_site).status_code == 403  # login CSRF
    assert client.get("/whoami").get_data(as_text=True) == "nobody"
    sign_in(client)
    assert client.post("/logout", headers=cross_site).status_code == 403
    assert client.get("/whoami").get_data(as_text=True) == "ann@example.com"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({}, id="no-headers"),
    ],
)
def test_safe_methods_pass_from_anywhere(client, headers):
    assert client.get("/whoami", headers=headers).status_code == 200
    assert client.head("/whoami", headers=headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(SAME_ORIGIN, id="same-origin"),
        pytest.param({"Sec-Fetch-Site": "none"}, id="users-own-navigation"),
        pytest.param({"Origin": HERE}, id="origin-without-fetch-metadata"),
    ],
)
def test_a_same_origin_post_passes(client, headers):
    assert client.post("/whoami", headers=headers).status_code == 200


# The guard: the session's account


def test_g_account_is_the_sessions_account(client, ann):
    assert client.get("/whoami").get_data(as_text=True) == "nobody"
    sign_in(client)
    assert client.get("/whoami").get_data(as_text=True) == "ann@example.com"
    assert ("success", "Signed in.") in flashes(client)


def test_a_password_changed_elsewhere_ends_the_session_on_its_next_request(app, auth, ann):
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here)
    sign_in(elsewhere)
    auth.passwords.change(ann.id, current=PASSWORD, new="another long passphrase")
    assert here.get("/whoami").get_data(as_text=True) == "nobody"
    assert flashes(here) == [("error", SESSION_ENDED)]
    with here.session_transaction() as session:
        assert ACCOUNT_KEY not in session
    assert elsewhere.get("/private").location == "/login"
    assert flashes(elsewhere) == [("error", SESSION_ENDED)]


def test_a_disabled_account_ends_the_session_and_no_flash_without_one(client, auth, ann):
    assert client.get("/whoami").status_code == 200
    assert flashes(client) == []  # nobody was signed in: nothing ended
    sign_in(client)
    auth.disable_account(ann.id)
    assert client.get("/whoami").get_data(as_text=True) == "nobody"
    assert ("error", SESSION_ENDED) in flashes(client)


def test_a_session_planted_before_sign_in_does_not_survive_it(client, ann):
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
        session[FLOWS_KEY] = [["a-state", "a planted flow", 2**40]]
    sign_in(client)
    with client.session_transaction() as session:
        assert "planted" not in session
        assert FLOWS_KEY not in session
        assert set(session) == {ACCOUNT_KEY, "_flashes"}


def test_a_session_planted_before_a_redirect_sign_in_does_not_survive_it(client, fakes, ann):
    _, microsoft = fakes
    sign_in(client)
    callback(client, microsoft.authorize(begin(client, "link", "microsoft"), oid=OID))
    client.post("/logout", headers=SAME_ORIGIN)
    with client.session_transaction() as session:
        session["planted"] = "by someone else"
    url = begin(client, "sign_in", "microsoft")
    assert callback(client, microsoft.authorize(url, oid=OID)).location == "/home"
    with client.session_transaction() as session:
        assert "planted" not in session
    assert client.get("/whoami").get_data(as_text=True) == "ann@example.com"


# login_required


def test_login_required_sends_a_visitor_to_login_url(client, ann):
    assert client.get("/private").location == "/login"
    sign_in(client)
    assert client.get("/private").get_data(as_text=True) == "for the signed in"


def test_login_required_without_init_app_is_a_configuration_error():
    app = Flask("no_adapter")
    app.testing = True

    @app.get("/private")
    @login_required
    def private():
        return "never"

    with pytest.raises(ConfigurationError):
        app.test_client().get("/private")


def test_init_app_needs_the_apps_origin():
    with pytest.raises(ConfigurationError):
        FlaskAuth(Auth(MemoryStore()), Flask("no_origin"))


def test_init_app_later_for_an_application_factory(auth):
    bpart = FlaskAuth(auth, login_url="/sign-in")
    app = Flask("factory")
    app.secret_key = "k"

    @app.get("/private")
    @login_required
    def private():
        return "never"

    bpart.init_app(app)
    assert app.extensions["bpart_auth"] is bpart
    assert app.test_client().get("/private").location == "/sign-in"


# Cookies


def test_session_cookies_get_samesite_lax_unless_the_app_chose(auth):
    assert make_app(auth).config["SESSION_COOKIE_SAMESITE"] == "Lax"
    app = Flask("strict")
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    FlaskAuth(auth, app)
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Strict"


def test_the_session_cookie_is_sent_samesite_lax(client, ann):
    response = client.post(
        "/password", data={"email": "ann@example.com", "password": PASSWORD}, headers=SAME_ORIGIN
    )
    cookie = response.headers["Set-Cookie"]
    assert "SameSite=Lax" in cookie
    assert "HttpOnly" in cookie


# Refusals: flashed where the user was


def test_a_refused_form_goes_back_to_the_same_origin_page_that_posted_it(client):
    headers = {**SAME_ORIGIN, "Referer": f"{HERE}/invite/abc?step=2"}
    response = client.post("/refuse", headers=headers)
    assert response.location == "/invite/abc?step=2"
    assert flashes(client) == [("error", AccountDisabled.default_message)]


@pytest.mark.parametrize(
    "referer",
    [
        pytest.param("https://evil.test/page", id="another-origin"),
        pytest.param("http://localhost:8080/page", id="another-port"),
        pytest.param("https://localhost/page", id="another-scheme"),
        pytest.param(f"{HERE}//evil.test/page", id="protocol-relative-path"),
        pytest.param("not a url at all", id="garbage"),
    ],
)
def test_a_referer_from_elsewhere_is_ignored(client, ann, referer):
    response = client.post("/refuse", headers={**SAME_ORIGIN, "Referer": referer})
    assert response.location == "/login"
    sign_in(client)
    response = client.post("/refuse", headers={**SAME_ORIGIN, "Referer": referer})
    assert response.location == "/home"


def test_a_refused_get_ignores_its_referer(client):
    response = client.get("/refuse", headers={"Referer": f"{HERE}/somewhere"})
    assert response.location == "/login"


def test_a_refused_callback_goes_back_to_the_page_its_flow_began_on(client, fakes, ann):
    _, microsoft = fakes
    url = begin(client, "sign_in", "microsoft", return_to="/the/page?tab=1")
    response = callback(client, microsoft.authorize(url, oid="not-linked"))
    assert response.location == "/the/page?tab=1"
    assert flashes(client) == [("error", str(IdentityNotLinked(provider="microsoft")))]


def test_an_admin_consent_answer_is_news_not_an_error(client):
    response = client.get("/callback?admin_consent=True&tenant=contoso.example")
    assert response.location == "/login"
    [(category, _)] = flashes(client)
    assert category == "info"


def test_on_error_renders_refusals_itself(auth, ann):
    seen = []

    def on_error(error):
        seen.append(error)
        return f"refused: {error.code}", 409

    client = make_app(auth, on_error=on_error).test_client()
    response = client.post("/refuse", headers=SAME_ORIGIN)
    assert (response.status_code, response.get_data(as_text=True)) == (
        409,
        "refused: account_disabled",
    )
    assert isinstance(seen[0], AccountDisabled)
    assert client.post("/unlink/google", headers=SAME_ORIGIN).status_code == 409
    assert isinstance(seen[1], SignInRequired)


# Redirect flows


def test_complete_flashes_the_outcome_and_goes_to_its_return_to(client, fakes, ann):
    google, _ = fakes
    sign_in(client)
    flashes(client)
    url = begin(client, "link", "google", return_to="/profile")
    response = callback(client, google.authorize(url, email="ann@example.com"))
    assert response.location == "/profile"
    [(category, message)] = flashes(client)
    assert category == "success"
    assert message.startswith("Your Google account is now linked.")
    client.post("/logout", headers=SAME_ORIGIN)
    url = begin(client, "sign_in", "google")  # no return_to: home_url
    assert callback(client, google.authorize(url, email="ann@example.com")).location == "/home"
    assert client.get("/whoami").get_data(as_text=True) == "ann@example.com"


def test_two_tabs_each_finish_their_own_flow(client, auth, fakes, ann):
    google, microsoft = fakes
    sign_in(client)
    google_tab = begin(client, "link", "google", return_to="/tab/1")
    microsoft_tab = begin(client, "link", "microsoft", return_to="/tab/2")
    # The later tab finishes first; the earlier one's flow is still there.
    assert callback(client, microsoft.authorize(microsoft_tab, oid=OID)).location == "/tab/2"
    response = callback(client, google.authorize(google_tab, email="ann@example.com"))
    assert response.location == "/tab/1"
    assert set(auth.sign_in_methods(ann.id).providers) == {"google", "microsoft"}
    assert client.get("/whoami").get_data(as_text=True) == "ann@example.com"


def test_a_flow_begun_in_one_client_is_refused_in_another(app, fakes, ann):
    google, _ = fakes
    attacker, victim = app.test_client(), app.test_client()
    params = google.authorize(begin(attacker, "sign_in", "google"), email="ann@example.com")
    assert callback(victim, params).location == "/login"
    assert flashes(victim) == [("error", InvalidFlowState.default_message)]
    assert victim.get("/whoami").get_data(as_text=True) == "nobody"
    # The flow is still its own session's: the victim's attempt did not use it up.
    assert callback(attacker, params).location == "/home"
    assert attacker.get("/whoami").get_data(as_text=True) == "ann@example.com"


def test_link_needs_a_signed_in_session(client):
    response = client.post("/begin/link/google", headers=SAME_ORIGIN)
    assert response.location == "/login"
    assert flashes(client) == [("error", SignInRequired.default_message)]


# Unlink and sign out


def test_unlink_keeps_this_session_and_ends_the_others(app, auth, fakes, ann):
    _, microsoft = fakes
    here, elsewhere = app.test_client(), app.test_client()
    sign_in(here)
    callback(here, microsoft.authorize(begin(here, "link", "microsoft"), oid=OID))
    sign_in(elsewhere)
    response = here.post("/unlink/microsoft", headers=SAME_ORIGIN)
    assert response.location == "/home"
    assert not auth.sign_in_methods(ann.id).providers
    assert here.get("/whoami").get_data(as_text=True) == "ann@example.com"
    assert elsewhere.get("/whoami").get_data(as_text=True) == "nobody"


def test_unlinking_the_last_way_in_is_refused(client, auth, fakes):
    google, _ = fakes
    auth.create_account(email="bob@example.com")  # no password: Google is all he has
    url = begin(client, "sign_in", "google")
    callback(client, google.authorize(url, email="bob@example.com"))
    flashes(client)
    assert client.post("/unlink/google", headers=SAME_ORIGIN).location == "/home"
    assert flashes(client) == [("error", LastSignInMethod.default_message)]
    assert client.get("/whoami").get_data(as_text=True) == "bob@example.com"


def test_sign_out_empties_the_session(client, fakes, ann):
    sign_in(client)
    begin(client, "link", "google")
    response = client.post("/logout", headers=SAME_ORIGIN)
    assert response.location == "/login"
    with client.session_transaction() as session:
        assert dict(session) == {"_flashes": [("success", "Signed out.")]}


# Packaging


def test_import_bpart_auth_does_not_import_the_adapter():
    script = textwrap.dedent(
        """
        import sys
        import bpart_auth
        print(sorted({"bpart_auth.flask", "flask"} & set(sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
