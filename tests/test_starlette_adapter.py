"""bpart_auth.starlette on a tiny app, with the fake providers: what `StarletteAuth` does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from base64 import b64decode, b64encode
from typing import Annotated
from urllib.parse import urlencode

import pytest
from fastapi import Depends, FastAPI
from itsdangerous import TimestampSigner
from starlette.applications import Starlette
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient

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
from bpart_auth.aio import AsyncAuth
from bpart_auth.services.sessions import ACCOUNT_KEY, FLOWS_KEY
from bpart_auth.starlette import (
    FORGED_REQUEST,
    MAX_NOTICES,
    NOTICES_KEY,
    SESSION_ENDED,
    SignedIn,
    StarletteAuth,
    flash,
    notices,
    signed_in,
)

SESSION_KEY = "a Starlette session key"
PASSWORD = "correct horse battery staple"
HERE = "https://app.test"  # the test client's origin, and the app's
SAME_ORIGIN = {"Sec-Fetch-Site": "same-origin"}  # what a browser sends with the app's forms
OID = "oid-ann"


@pytest.fixture
def auth(auth_with_fakes):
    return auth_with_fakes(redirect_uri=f"{HERE}/callback")


@pytest.fixture
def ann(auth):
    return auth.create_account(email="ann@example.com", password=PASSWORD)


def make_app(auth: Auth | AsyncAuth, **options) -> Starlette:
    """A tiny Starlette app: every helper of `StarletteAuth` behind a route."""
    bpart = StarletteAuth(auth, login_url="/login", home_url="/home", **options)

    async def whoami(request):
        account = request.state.account
        return PlainTextResponse(account.email if account else "nobody")

    async def session(request):
        return JSONResponse({"session": dict(request.session)})

    async def shown(request):
        return JSONResponse([[n.category, n.message] for n in notices(request)])

    async def password(request):
        form = await request.form()
        account = await bpart.auth.passwords.sign_in(form["email"], form["password"])
        return await bpart.sign_in(request, account, "Signed in.")

    async def begin(request):
        form = await request.form()
        helper = {"sign_in": bpart.sign_in_with, "link": bpart.link}[request.path_params["intent"]]
        return await helper(
            request, request.path_params["provider"], return_to=form.get("return_to")
        )

    async def private(request):
        account = await signed_in(request)
        return PlainTextResponse(f"for {account.email}")

    async def logout(request):
        return await bpart.sign_out(request, "Signed out.")

    async def refuse(request):
        raise AccountDisabled

    async def socket(websocket):
        await websocket.accept()
        account = websocket.state.account
        await websocket.send_text(account.email if account else "nobody")
        await websocket.close()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    app = Starlette(
        routes=[
            Route("/whoami", whoami, methods=methods),
            Route("/session", session),
            Route("/notices", shown),
            Route("/password", password, methods=["POST"]),
            Route("/begin/{intent}/{provider}", begin, methods=["POST"]),
            Route("/login/{provider}", bpart.sign_in_with, methods=["POST"]),
            Route("/invite/{token}/{provider}", bpart.accept_invite_with, methods=["POST"]),
            Route("/callback", bpart.complete),
            Route("/unlink/{provider}", bpart.unlink, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/private", private),
            Route("/refuse", refuse, methods=["GET", "POST"]),
            WebSocketRoute("/socket", socket),
        ]
    )
    bpart.init_app(app)
    app.add_middleware(SessionMiddleware, secret_key=SESSION_KEY)
    return app


def client_of(app) -> TestClient:
    return TestClient(app, base_url=HERE, follow_redirects=False)


@pytest.fixture
def app(auth):
    return make_app(auth)


@pytest.fixture
def client(app):
    return client_of(app)


def shown(client):
    return [tuple(pair) for pair in client.get("/notices").json()]


def whoami(client):
    return client.get("/whoami").text


def session_of(client):
    return client.get("/session").json()["session"]


def plant(client, data):
    """A session cookie holding `data`, as a session-fixation attacker would set it."""
    signed = TimestampSigner(SESSION_KEY).sign(b64encode(json.dumps(data).encode()))
    client.cookies.set("session", signed.decode(), domain="app.test")
    assert json.loads(b64decode(TimestampSigner(SESSION_KEY).unsign(signed))) == data


def sign_in(client, email="ann@example.com"):
    form = {"email": email, "password": PASSWORD}
    response = client.post("/password", data=form, headers=SAME_ORIGIN)
    assert (response.status_code, response.headers["location"]) == (303, "/home")


def begin(client, intent, provider, return_to=None):
    form = {"return_to": return_to} if return_to else {}
    response = client.post(f"/begin/{intent}/{provider}", data=form, headers=SAME_ORIGIN)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def callback(client, params):
    return client.get("/callback?" + urlencode(params))


# The middleware: cross-origin requests


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Sec-Fetch-Site": "cross-site"}, id="cross-site"),
        pytest.param({"Sec-Fetch-Site": "same-site"}, id="same-site"),
        pytest.param({"Origin": "https://evil.test"}, id="origin-mismatch"),
        pytest.param({"Origin": "https://app.test:8443"}, id="origin-other-port"),
        pytest.param({"Origin": "http://app.test"}, id="origin-other-scheme"),
        pytest.param({}, id="no-headers"),
    ],
)
def test_a_cross_origin_unsafe_request_is_refused_before_the_endpoint(client, ann, method, headers):
    sign_in(client)
    response = client.request(method, "/whoami", headers=headers)
    assert (response.status_code, response.text) == (403, FORGED_REQUEST)
    assert response.headers["content-type"].startswith("text/plain")


def test_a_forged_sign_in_or_sign_out_changes_nothing(client, ann):
    cross_site = {"Sec-Fetch-Site": "cross-site"}
    form = {"email": "ann@example.com", "password": PASSWORD}
    assert client.post("/password", data=form, headers=cross_site).status_code == 403
    assert whoami(client) == "nobody"
    sign_in(client)
    assert client.post("/logout", headers=cross_site).status_code == 403
    assert whoami(client) == "ann@example.com"


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
    assert client.options("/whoami", headers=headers).status_code == 405  # the route's answer


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


# The middleware: the session's account


def test_request_state_account_is_the_sessions_account(client, ann):
    assert whoami(client) == "nobody"
    sign_in(client)
    assert whoami(client) == "ann@example.com"
    assert shown(client) == [("success", "Signed in.")]
    assert shown(client) == []  # shown once


def test_a_websocket_sees_the_sessions_account(client, ann):
    with client.websocket_connect("wss://app.test/socket") as socket:
        assert socket.receive_text() == "nobody"
    sign_in(client)
    with client.websocket_connect("wss://app.test/socket") as socket:
        assert socket.receive_text() == "ann@example.com"


def test_lifespan_passes_through(app):
    with client_of(app) as client:  # runs the lifespan events through the middleware
        assert whoami(client) == "nobody"


def test_a_password_changed_elsewhere_ends_the_session_on_its_next_request(app, auth, ann):
    here, elsewhere = client_of(app), client_of(app)
    sign_in(here)
    sign_in(elsewhere)
    shown(here)
    auth.passwords.change(ann.id, current=PASSWORD, new="another long passphrase")
    assert whoami(here) == "nobody"
    assert shown(here) == [("error", SESSION_ENDED)]
    assert ACCOUNT_KEY not in session_of(here)
    response = elsewhere.get("/private")
    assert response.headers["location"] == "/login"
    assert shown(elsewhere) == [("error", SESSION_ENDED), ("error", "Please sign in first.")]


def test_a_disabled_account_ends_the_session_and_no_notice_without_one(client, auth, ann):
    assert whoami(client) == "nobody"
    assert shown(client) == []  # nobody was signed in: nothing ended
    sign_in(client)
    auth.disable_account(ann.id)
    assert whoami(client) == "nobody"
    assert ("error", SESSION_ENDED) in shown(client)


def test_a_session_planted_before_sign_in_does_not_survive_it(client, ann):
    plant(client, {"planted": "by someone else", FLOWS_KEY: [["a-state", "a flow", 2**40]]})
    assert session_of(client)["planted"] == "by someone else"
    sign_in(client)
    assert set(session_of(client)) == {ACCOUNT_KEY, NOTICES_KEY}


def test_a_session_planted_before_a_redirect_sign_in_does_not_survive_it(client, fakes, ann):
    _, microsoft = fakes
    sign_in(client)
    callback(client, microsoft.authorize(begin(client, "link", "microsoft"), oid=OID))
    client.post("/logout", headers=SAME_ORIGIN)
    url = begin(client, "sign_in", "microsoft")
    session = session_of(client)
    plant(client, {**session, "planted": "by someone else"})
    assert callback(client, microsoft.authorize(url, oid=OID)).headers["location"] == "/home"
    assert "planted" not in session_of(client)
    assert whoami(client) == "ann@example.com"


def test_without_a_session_middleware_outside_it_is_a_configuration_error(auth):
    app = Starlette(routes=[Route("/", lambda _: PlainTextResponse("never"))])
    app.add_middleware(SessionMiddleware, secret_key=SESSION_KEY)
    StarletteAuth(auth, app)  # after SessionMiddleware: outside it, so no session yet
    with pytest.raises(ConfigurationError):
        client_of(app).get("/")


def test_the_apps_origin_is_needed_at_once():
    with pytest.raises(ConfigurationError):
        StarletteAuth(Auth(MemoryStore()))


def test_a_sync_auth_is_wrapped_and_an_async_one_kept(auth):
    assert StarletteAuth(auth).auth.sync is auth
    wrapped = AsyncAuth(auth)
    assert StarletteAuth(wrapped).auth is wrapped
    client = client_of(make_app(wrapped))
    auth.create_account(email="ann@example.com", password=PASSWORD)
    sign_in(client)
    assert whoami(client) == "ann@example.com"


# signed_in and SignedIn


def test_signed_in_sends_a_visitor_to_login_url(client, ann):
    response = client.get("/private")
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert shown(client) == [("error", SignInRequired.default_message)]
    sign_in(client)
    assert client.get("/private").text == "for ann@example.com"


def test_signed_in_as_a_fastapi_dependency(auth, ann):
    app = FastAPI()
    bpart = StarletteAuth(auth, app, login_url="/sign-in")
    app.add_middleware(SessionMiddleware, secret_key=SESSION_KEY)

    @app.get("/me")
    async def me(account: SignedIn):
        return {"email": account.email}

    @app.post("/login")
    async def login(request: Request):
        account = await bpart.auth.passwords.sign_in("ann@example.com", PASSWORD)
        return await bpart.sign_in(request, account)

    client = client_of(app)
    assert client.get("/me").headers["location"] == "/sign-in"
    assert client.post("/login", headers=SAME_ORIGIN).status_code == 303
    assert client.get("/me").json() == {"email": "ann@example.com"}


def test_signed_in_without_init_app_is_a_configuration_error():
    app = FastAPI()

    @app.get("/me")
    async def me(account: Annotated[object, Depends(signed_in)]):
        return "never"

    with pytest.raises(ConfigurationError):
        client_of(app).get("/me")


# Refusals: a notice where the user was


def test_a_refused_form_goes_back_to_the_same_origin_page_that_posted_it(client):
    headers = {**SAME_ORIGIN, "Referer": f"{HERE}/invite/abc?step=2"}
    response = client.post("/refuse", headers=headers)
    assert (response.status_code, response.headers["location"]) == (303, "/invite/abc?step=2")
    assert shown(client) == [("error", AccountDisabled.default_message)]


@pytest.mark.parametrize(
    "referer",
    [
        pytest.param("https://evil.test/page", id="another-origin"),
        pytest.param("https://app.test:8443/page", id="another-port"),
        pytest.param("http://app.test/page", id="another-scheme"),
        pytest.param("not a url at all", id="garbage"),
    ],
)
def test_a_referer_from_elsewhere_is_ignored(client, ann, referer):
    response = client.post("/refuse", headers={**SAME_ORIGIN, "Referer": referer})
    assert response.headers["location"] == "/login"
    sign_in(client)
    response = client.post("/refuse", headers={**SAME_ORIGIN, "Referer": referer})
    assert response.headers["location"] == "/home"


@pytest.mark.parametrize("path", ["//evil.test/page", "/\\evil.test/page", "///evil.test"])
def test_a_same_origin_referer_never_leads_off_the_site(client, path):
    response = client.post("/refuse", headers={**SAME_ORIGIN, "Referer": f"{HERE}{path}"})
    location = response.headers["location"]
    assert location.startswith("/")
    assert not location.startswith(("//", "/\\"))


def test_a_refused_get_ignores_its_referer(client):
    response = client.get("/refuse", headers={"Referer": f"{HERE}/somewhere"})
    assert response.headers["location"] == "/login"


def test_a_refused_callback_goes_back_to_the_page_its_flow_began_on(client, fakes, ann):
    _, microsoft = fakes
    url = begin(client, "sign_in", "microsoft", return_to="/the/page?tab=1")
    response = callback(client, microsoft.authorize(url, oid="not-linked"))
    assert response.headers["location"] == "/the/page?tab=1"
    assert shown(client) == [("error", str(IdentityNotLinked(provider="microsoft")))]


def test_an_admin_consent_answer_is_news_not_an_error(client):
    response = client.get("/callback?admin_consent=True&tenant=contoso.example")
    assert response.headers["location"] == "/login"
    [(category, _)] = shown(client)
    assert category == "info"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_on_error_renders_refusals_itself_or_leaves_them(auth, ann, is_async):
    seen = []

    def render(request, error):
        seen.append(error)
        if isinstance(error, SignInRequired):
            return None  # the default: a notice and a redirect
        return PlainTextResponse(f"refused: {error.code}", 409)

    async def render_async(request, error):
        return render(request, error)

    client = client_of(make_app(auth, on_error=render_async if is_async else render))
    response = client.post("/refuse", headers=SAME_ORIGIN)
    assert (response.status_code, response.text) == (409, "refused: account_disabled")
    assert isinstance(seen[0], AccountDisabled)
    assert client.post("/unlink/google", headers=SAME_ORIGIN).headers["location"] == "/login"
    assert isinstance(seen[1], SignInRequired)
    assert shown(client) == [("error", SignInRequired.default_message)]


# Notices


def test_notices_are_bounded_and_a_mangled_list_is_ignored():
    request = Request({"type": "http", "session": {}})
    for number in range(MAX_NOTICES + 3):
        flash(request, f"notice {number}")
    assert [n.message for n in notices(request)] == [
        f"notice {number}" for number in range(3, MAX_NOTICES + 3)
    ]
    request.session[NOTICES_KEY] = [["info", "kept"], "not a pair", ["info", 3], None]
    assert [n.message for n in notices(request)] == ["kept"]
    request.session[NOTICES_KEY] = "not a list"
    assert notices(request) == []


# Redirect flows


def test_complete_leaves_the_outcome_and_goes_to_its_return_to(client, fakes, ann):
    google, _ = fakes
    sign_in(client)
    shown(client)
    url = begin(client, "link", "google", return_to="/profile")
    response = callback(client, google.authorize(url, email="ann@example.com"))
    assert response.headers["location"] == "/profile"
    [(category, message)] = shown(client)
    assert category == "success"
    assert message.startswith("Your Google account is now linked.")
    client.post("/logout", headers=SAME_ORIGIN)
    url = begin(client, "sign_in", "google")  # no return_to: home_url
    response = callback(client, google.authorize(url, email="ann@example.com"))
    assert response.headers["location"] == "/home"
    assert whoami(client) == "ann@example.com"


def test_the_helpers_serve_as_endpoints(client, auth, fakes, ann):
    google, _ = fakes
    response = client.post("/login/google", headers=SAME_ORIGIN)  # provider from the path
    assert response.status_code == 303
    assert callback(client, google.authorize(response.headers["location"])).status_code == 303
    assert whoami(client) == "ann@example.com"
    assert shown(client) == [("success", "You are signed in with Google.")]
    assert client.post("/login/github", headers=SAME_ORIGIN).status_code == 404
    assert client.post("/unlink/github", headers=SAME_ORIGIN).status_code == 404
    assert client.post("/invite/a-token/github", headers=SAME_ORIGIN).status_code == 404
    response = client.post("/invite/not-a-token/google", headers=SAME_ORIGIN)
    assert response.headers["location"] == "/home"  # refused: a notice says why
    [(category, _)] = shown(client)
    assert category == "error"


def test_two_tabs_each_finish_their_own_flow(client, auth, fakes, ann):
    google, microsoft = fakes
    sign_in(client)
    google_tab = begin(client, "link", "google", return_to="/tab/1")
    microsoft_tab = begin(client, "link", "microsoft", return_to="/tab/2")
    # The later tab finishes first; the earlier one's flow is still there.
    response = callback(client, microsoft.authorize(microsoft_tab, oid=OID))
    assert response.headers["location"] == "/tab/2"
    response = callback(client, google.authorize(google_tab, email="ann@example.com"))
    assert response.headers["location"] == "/tab/1"
    assert set(auth.sign_in_methods(ann.id).providers) == {"google", "microsoft"}
    assert whoami(client) == "ann@example.com"


def test_a_flow_begun_in_one_client_is_refused_in_another(app, fakes, ann):
    google, _ = fakes
    attacker, victim = client_of(app), client_of(app)
    params = google.authorize(begin(attacker, "sign_in", "google"), email="ann@example.com")
    assert callback(victim, params).headers["location"] == "/login"
    assert shown(victim) == [("error", InvalidFlowState.default_message)]
    assert whoami(victim) == "nobody"
    # The flow is still its own session's: the victim's attempt did not use it up.
    assert callback(attacker, params).headers["location"] == "/home"
    assert whoami(attacker) == "ann@example.com"


def test_link_needs_a_signed_in_session(client):
    response = client.post("/begin/link/google", headers=SAME_ORIGIN)
    assert response.headers["location"] == "/login"
    assert shown(client) == [("error", SignInRequired.default_message)]


# Unlink and sign out


def test_unlink_keeps_this_session_and_ends_the_others(app, auth, fakes, ann):
    _, microsoft = fakes
    here, elsewhere = client_of(app), client_of(app)
    sign_in(here)
    callback(here, microsoft.authorize(begin(here, "link", "microsoft"), oid=OID))
    sign_in(elsewhere)
    response = here.post("/unlink/microsoft", headers=SAME_ORIGIN)
    assert response.headers["location"] == "/home"
    assert not auth.sign_in_methods(ann.id).providers
    assert whoami(here) == "ann@example.com"
    assert whoami(elsewhere) == "nobody"


def test_unlinking_the_last_way_in_is_refused(client, auth, fakes):
    google, _ = fakes
    auth.create_account(email="bob@example.com")  # no password: Google is all he has
    url = begin(client, "sign_in", "google")
    callback(client, google.authorize(url, email="bob@example.com"))
    shown(client)
    assert client.post("/unlink/google", headers=SAME_ORIGIN).headers["location"] == "/home"
    assert shown(client) == [("error", LastSignInMethod.default_message)]
    assert whoami(client) == "bob@example.com"


def test_sign_out_empties_the_session(client, fakes, ann):
    sign_in(client)
    begin(client, "link", "google")
    response = client.post("/logout", headers=SAME_ORIGIN)
    assert response.headers["location"] == "/login"
    assert session_of(client) == {NOTICES_KEY: [["success", "Signed out."]]}


# Packaging


def test_import_bpart_auth_does_not_import_the_adapter():
    script = textwrap.dedent(
        """
        import sys
        import bpart_auth
        print(sorted({"bpart_auth.starlette", "starlette", "fastapi"} & set(sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
