"""bpart_auth.django on a small Django app: Django's test client, sessions and CSRF.

Django's settings are configured once per process (by this module or by the Django
example's tests, whichever runs first); every test here overrides what it needs
(`override_settings`), so the order does not matter.
"""

from __future__ import annotations

import time
from urllib.parse import urlencode

import django
import django.conf
import pytest
from django.contrib import messages
from django.contrib.sessions.backends.cache import SessionStore
from django.http import HttpResponse
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory, override_settings
from django.urls import path
from django.views.decorators.http import require_POST

from bpart_auth import Auth, ConfigurationError, MemoryStore, SignInRequired
from bpart_auth import django as bpart
from bpart_auth.services.sessions import ACCOUNT_KEY, FLOWS_KEY
from bpart_auth.testing import CHEAP_FOR_TESTS

SECRET = "a test secret key, 32 bytes long!"
PASSWORD = "correct horse battery staple"
CALLBACK = "http://testserver/auth/callback"
SESSIONS = "django.contrib.sessions.middleware.SessionMiddleware"
CSRF = "django.middleware.csrf.CsrfViewMiddleware"
MESSAGES = "django.contrib.messages.middleware.MessageMiddleware"
AUTH = "bpart_auth.django.AuthMiddleware"
CROSS_ORIGIN = "bpart_auth.django.CrossOriginMiddleware"
SAME_ORIGIN = {"HTTP_SEC_FETCH_SITE": "same-origin"}


def page(request):
    """Who is signed in, and the messages."""
    shown = " | ".join(str(message) for message in messages.get_messages(request))
    account = request.account
    return HttpResponse(f"account={account.email if account else None}; messages={shown}")


def login(request):
    if request.method == "POST":
        auth = bpart.get_auth()
        account = auth.passwords.sign_in(request.POST["email"], request.POST["password"])
        return bpart.sign_in(request, account, "Welcome back.")
    get_token(request)  # as a form's {% csrf_token %} does: the CSRF cookie is set
    return page(request)


def levels(request):
    """The messages' levels."""
    return HttpResponse(" ".join(message.tags for message in messages.get_messages(request)))


@bpart.login_required
def profile(request):
    return page(request)


@require_POST
def boom(request):
    bpart.get_auth().passwords.change(request.account.id, current="wrong!", new=PASSWORD * 2)
    return page(request)  # pragma: no cover - never reached


@require_POST
def link_from_profile(request, provider):
    return bpart.link(request, provider, return_to="/profile")


def change_password(request):
    account = bpart.get_auth().passwords.change(
        request.account.id, current=PASSWORD, new="another good passphrase"
    )
    bpart.refresh(request, account)
    return page(request)


@require_POST
def second_factor(request):
    bpart.get_auth().second_factors.verify(request.session, request.POST["code"])
    bpart.finish_sign_in(request)
    return page(request)


PROVIDER = "<str:provider>"
urlpatterns = [
    path("second-factor", second_factor),
    path("", page),
    path("login", login),
    path("profile", profile),
    path("levels", levels),
    path("boom", boom),
    path("password", change_password),
    path(f"login/{PROVIDER}", require_POST(bpart.sign_in_with)),
    path(f"link/{PROVIDER}", require_POST(bpart.link)),
    path(f"profile/link/{PROVIDER}", link_from_profile),
    path(f"unlink/{PROVIDER}", require_POST(bpart.unlink)),
    path(f"invite/<str:token>/{PROVIDER}", require_POST(bpart.accept_invite_with)),
    path("auth/callback", bpart.complete),
    path("logout", require_POST(bpart.sign_out)),
]

MIDDLEWARE = [SESSIONS, CSRF, MESSAGES, AUTH]


def configure_once():
    """Django's settings, unless the example's tests configured them already."""
    if not django.conf.settings.configured:
        django.conf.settings.configure(SECRET_KEY=SECRET, INSTALLED_APPS=[], ROOT_URLCONF=__name__)
        django.setup()


@pytest.fixture
def auth(auth_with_fakes):
    return auth_with_fakes(redirect_uri=CALLBACK)


def app_settings(auth, **changes):
    configure_once()
    return override_settings(
        **{
            "SECRET_KEY": SECRET,
            "ROOT_URLCONF": __name__,
            "ALLOWED_HOSTS": ["testserver"],
            "INSTALLED_APPS": ["django.contrib.sessions", "django.contrib.messages"],
            "MIDDLEWARE": MIDDLEWARE,
            # A server-side store, so a session's old key can be seen to be deleted.
            "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
            "MESSAGE_STORAGE": "django.contrib.messages.storage.session.SessionStorage",
            "BPART_AUTH": auth,
            "LOGIN_URL": "/login",
            "LOGIN_REDIRECT_URL": "/",
            "LOGOUT_REDIRECT_URL": None,
            **changes,
        }
    )


@pytest.fixture
def app(auth):
    with app_settings(auth):
        yield auth


@pytest.fixture
def ann(auth):
    return auth.create_account(email="ann@example.com", password=PASSWORD)


def signed_in(client, email="ann@example.com"):
    response = client.post("/login", {"email": email, "password": PASSWORD})
    assert response.status_code == 302
    return response


def text(client, url="/"):
    return client.get(url).content.decode()


def callback(client, fake, start, **claims):
    """Play the user at the fake provider for the flow that `start` redirected to."""
    params = fake.authorize(start["Location"], **claims)
    return client.get("/auth/callback?" + urlencode(params))


# Configuration


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        pytest.param({"BPART_AUTH": None}, "must be an Auth", id="setting-missing"),
        pytest.param({"BPART_AUTH": "no.such.module.auth"}, "no.such", id="bad-path"),
        pytest.param({"BPART_AUTH": "bpart_auth.django.SESSION_ENDED"}, "must be", id="not-auth"),
        pytest.param({"MIDDLEWARE": [SESSIONS, MESSAGES, AUTH]}, CSRF, id="no-csrf"),
        pytest.param({"MIDDLEWARE": [CSRF, MESSAGES, AUTH, SESSIONS]}, SESSIONS, id="late-session"),
        pytest.param(
            {"MIDDLEWARE": [SESSIONS, CSRF, AUTH, MESSAGES]}, MESSAGES, id="late-messages"
        ),
    ],
)
def test_a_misconfiguration_fails_when_django_loads_the_middleware(auth, changes, detail):
    with app_settings(auth, **changes), pytest.raises(ConfigurationError) as caught:
        Client().get("/")
    assert detail in caught.value.detail


def test_the_settings_may_name_the_auth_by_its_dotted_path(auth, ann, monkeypatch):
    monkeypatch.setattr(f"{__name__}.SOME_AUTH", auth, raising=False)
    with app_settings(auth, BPART_AUTH=f"{__name__}.SOME_AUTH"):
        client = Client()
        signed_in(client)
        assert "account=ann@example.com" in text(client)


def test_messages_are_optional(auth, ann):
    with app_settings(auth, MIDDLEWARE=[SESSIONS, CSRF, AUTH], INSTALLED_APPS=[]):
        client = Client()
        assert signed_in(client)["Location"] == "/"
        assert client.get("/profile").status_code == 200


# Sessions


def test_a_session_planted_before_sign_in_does_not_survive(app, ann):
    client = Client()
    planted = SessionStore()
    planted["planted"] = "by someone else before the sign-in"
    planted.save()
    client.cookies[django.conf.settings.SESSION_COOKIE_NAME] = planted.session_key
    assert client.session["planted"]
    csrf_before = client.get("/login").cookies["csrftoken"].value

    response = signed_in(client)
    assert response["Location"] == "/"
    after = client.session
    assert after.session_key != planted.session_key  # a new key
    assert "planted" not in after
    assert SessionStore(planted.session_key).load() == {}  # the old data is gone
    assert response.cookies["csrftoken"].value != csrf_before  # a new CSRF token
    assert text(client) == "account=ann@example.com; messages=Welcome back."


def test_a_session_ends_when_the_password_changed_elsewhere(app, ann):
    here, elsewhere = Client(), Client()
    signed_in(here)
    signed_in(elsewhere)
    assert "account=ann@example.com" in text(here)

    here.get("/password")  # `refresh`: the session that changed it goes on
    assert "account=ann@example.com" in text(here)
    key = elsewhere.session.session_key
    assert text(elsewhere) == f"account=None; messages={bpart.SESSION_ENDED}"
    assert SessionStore(key).load() == {}  # flushed from the store
    assert elsewhere.get("/profile")["Location"] == "/login"


def test_login_required_sends_a_visitor_to_login_url(app, ann):
    client = Client()
    assert client.get("/profile")["Location"] == "/login"
    signed_in(client)
    assert client.get("/profile").status_code == 200


def test_login_required_without_the_middleware_is_a_configuration_error(auth):
    with app_settings(auth, MIDDLEWARE=[SESSIONS, CSRF]), pytest.raises(ConfigurationError):
        Client().get("/profile")


def test_sign_out_flushes_the_session(app, ann):
    client = Client()
    signed_in(client)
    key = client.session.session_key
    assert client.post("/logout")["Location"] == "/login"
    assert SessionStore(key).load() == {}
    assert text(client).startswith("account=None")


def test_sign_out_goes_to_logout_redirect_url_when_set(auth, ann):
    with app_settings(auth, LOGOUT_REDIRECT_URL="/bye"):
        client = Client()
        signed_in(client)
        assert client.post("/logout")["Location"] == "/bye"


# Django's CSRF stays on


def test_django_csrf_refuses_a_post_without_its_token(app, ann):
    client = Client(enforce_csrf_checks=True)
    response = client.post("/login", {"email": "ann@example.com", "password": PASSWORD})
    assert response.status_code == 403
    token = client.get("/login").cookies["csrftoken"].value
    response = client.post(
        "/login", {"email": "ann@example.com", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response["Location"] == "/"


def test_cross_origin_middleware_refuses_forged_posts(auth, ann):
    with app_settings(auth, MIDDLEWARE=[SESSIONS, CROSS_ORIGIN, CSRF, MESSAGES, AUTH]):
        client = Client()
        form = {"email": "ann@example.com", "password": PASSWORD}
        response = client.post("/login", form, HTTP_SEC_FETCH_SITE="cross-site")
        assert (response.status_code, response.content.decode()) == (403, bpart.FORGED_REQUEST)
        assert client.post("/login", form).status_code == 403  # no browser header at all
        assert client.post("/login", form, **SAME_ORIGIN)["Location"] == "/"
        assert client.get("/", HTTP_SEC_FETCH_SITE="cross-site").status_code == 200


def test_cross_origin_middleware_needs_the_apps_origin(fakes):
    auth = Auth(MemoryStore())  # no redirect_uri
    middleware = [SESSIONS, CROSS_ORIGIN, CSRF, AUTH]
    with app_settings(auth, MIDDLEWARE=middleware), pytest.raises(ConfigurationError) as caught:
        Client().get("/")
    assert "redirect_uri" in caught.value.detail


# Errors


def test_an_auth_error_becomes_a_message_on_the_page_that_posted(app, ann):
    client = Client()
    response = client.post(
        "/login",
        {"email": "ann@example.com", "password": "wrong password!"},
        HTTP_REFERER="http://testserver/login?from=here",
    )
    assert response["Location"] == "/login?from=here"
    assert "The email address or password is incorrect." in text(client, "/login")


@pytest.mark.parametrize(
    "referer",
    [
        pytest.param("http://elsewhere.example/login", id="other-host"),
        pytest.param("https://testserver/login", id="other-scheme"),
        pytest.param("http://testserver//elsewhere.example/", id="double-slash"),
        pytest.param("http://testserver/\\elsewhere.example", id="backslash"),
        pytest.param("not a url", id="relative"),
    ],
)
def test_a_referer_from_elsewhere_is_no_landing_page(app, ann, referer):
    response = Client().post(
        "/login", {"email": "ann@example.com", "password": "wrong!"}, HTTP_REFERER=referer
    )
    assert response["Location"] == "/login"


def test_a_signed_in_users_refusal_lands_on_login_redirect_url(app, ann):
    client = Client()
    signed_in(client)
    assert client.post("/boom")["Location"] == "/"  # no Referer
    assert "The email address or password is incorrect." in text(client)


@pytest.mark.parametrize(
    ("query", "level"),
    [
        pytest.param("admin_consent=True&tenant=contoso.example", "info", id="consent-answered"),
        pytest.param("state=never-begun&code=c", "error", id="refusal"),
    ],
)
def test_news_is_info_and_a_refusal_an_error(app, query, level):
    client = Client()
    assert client.get(f"/auth/callback?{query}")["Location"] == "/login"
    assert client.get("/levels").content.decode() == level


def test_a_subclass_renders_errors_itself(auth, ann):
    with app_settings(auth, MIDDLEWARE=[SESSIONS, CSRF, MESSAGES, f"{__name__}.OwnErrors"]):
        response = Client().post("/login", {"email": "ann@example.com", "password": "wrong!"})
    assert (response.status_code, response.content) == (400, b"invalid_credentials")


class OwnErrors(bpart.AuthMiddleware):
    def refused(self, request, error):  # noqa: ARG002 - the hook's signature
        return HttpResponse(error.code, status=400)


# Redirect flows


def test_google_sign_in_gets_a_fresh_session_and_goes_back(app, ann, fakes):
    google, _ = fakes
    client = Client()
    text(client, "/login")
    before = client.session.session_key
    start = client.post("/login/google")
    assert FLOWS_KEY in client.session
    response = callback(client, google, start, email="ann@example.com")
    assert response["Location"] == "/"
    assert client.session.session_key != before
    assert FLOWS_KEY not in client.session
    assert text(client) == "account=ann@example.com; messages=You are signed in with Google."


def test_a_flow_begun_in_one_session_cannot_be_completed_in_another(app, ann, fakes):
    google, _ = fakes
    attacker, victim = Client(), Client()
    start = attacker.post("/login/google")
    params = google.authorize(start["Location"], email="ann@example.com")
    response = victim.get("/auth/callback?" + urlencode(params))
    assert response["Location"] == "/login"
    page = text(victim)
    assert "account=None" in page
    assert "Your sign-in took too long or was interrupted." in page
    # The flow is still its own session's.
    attacker.get("/auth/callback?" + urlencode(params))
    assert "account=ann@example.com" in text(attacker)


def test_two_tabs_each_finish_their_own_link(app, ann, fakes):
    google, microsoft = fakes
    client = Client()
    signed_in(client)
    google_tab = client.post("/link/google")
    microsoft_tab = client.post("/link/microsoft")  # the first tab's flow stays
    assert callback(client, microsoft, microsoft_tab, oid="oid-ann")["Location"] == "/"
    assert "Your Microsoft account is now linked." in text(client)
    assert callback(client, google, google_tab, email="ann@example.com")["Location"] == "/"
    assert "Your Google account is now linked." in text(client)
    assert app.sign_in_methods(ann.id).providers == {"google", "microsoft"}
    assert "account=ann@example.com" in text(client)  # the links kept this session signed in


def test_linking_while_signed_out_asks_to_sign_in(app, ann):
    client = Client()
    assert client.post("/link/google")["Location"] == "/login"
    assert "Please sign in first." in text(client)


def test_a_refused_flow_goes_back_to_the_page_it_began_on(app, ann, fakes):
    _, microsoft = fakes
    bob = app.create_account(email="bob@example.com", password=PASSWORD)
    client, other = Client(), Client()
    signed_in(client)
    start = client.post("/profile/link/microsoft")
    signed_in(other, bob.email)  # bob links the same Microsoft account first
    callback(other, microsoft, other.post("/link/microsoft"), oid="oid-shared")
    response = callback(client, microsoft, start, oid="oid-shared")
    assert response["Location"] == "/profile"
    assert "already linked to another user here." in text(client, "/profile")


def test_unlink_keeps_this_session_and_ends_the_others(app, ann, fakes):
    google, _ = fakes
    here, elsewhere = Client(), Client()
    signed_in(here)
    signed_in(elsewhere)
    callback(here, google, here.post("/link/google"), email="ann@example.com")
    text(elsewhere)  # the link changed the credentials: that session has ended
    signed_in(elsewhere)
    assert here.post("/unlink/google")["Location"] == "/"
    assert "account=ann@example.com" in text(here)
    assert text(elsewhere).startswith("account=None")
    assert app.sign_in_methods(ann.id).providers == set()


def test_an_invitation_accepted_with_microsoft_signs_in(app, ann, fakes):
    _, microsoft = fakes
    _, token = app.invites.create("bob@example.com", invited_by=ann.id)
    client = Client()
    start = client.post(f"/invite/{token}/microsoft")
    assert callback(client, microsoft, start, oid="oid-bob")["Location"] == "/"
    assert text(client).startswith("account=bob@example.com")
    assert ACCOUNT_KEY in client.session


# The second step


def test_a_sign_in_with_a_second_factor_finishes_with_a_new_csrf_token(fakes):
    import pyotp  # noqa: PLC0415 - the `mfa` extra

    from bpart_auth.services.second_factors import SecondFactorPolicy  # noqa: PLC0415

    google, microsoft = fakes
    auth = Auth(
        MemoryStore(),
        secret_key=SECRET,
        providers=[google.provider(), microsoft.provider()],
        password_hashing=CHEAP_FOR_TESTS,
        second_factor=SecondFactorPolicy(),
    )
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    session: dict[str, object] = {}
    auth.sessions.sign_in(session, ann)
    secret = auth.second_factors.begin_totp(session).secret
    auth.second_factors.confirm_totp(session, pyotp.TOTP(secret).now())
    with app_settings(auth, BPART_AUTH_SECOND_FACTOR_URL="/second-factor"):
        client = Client()
        csrf_before = client.get("/login").cookies["csrftoken"].value
        assert signed_in(client)["Location"] == "/second-factor"
        assert text(client).startswith("account=None")
        key = client.session.session_key

        code = pyotp.TOTP(secret).at(time.time() + 30)  # the enrolment used this step's
        response = client.post("/second-factor", {"code": code})
        assert response.content.decode().startswith("account=ann@example.com")
        assert response.cookies["csrftoken"].value != csrf_before
        assert client.session.session_key != key
        assert text(client).startswith("account=ann@example.com")


def test_finish_sign_in_refuses_a_session_the_second_step_did_not_sign_in(app, ann):
    request = RequestFactory().get("/")
    request.session = SessionStore()
    with pytest.raises(SignInRequired):
        bpart.finish_sign_in(request)
    client = Client()
    response = client.post("/second-factor", {"code": "123456"})  # no pending sign-in
    assert response["Location"] == "/login"
    assert "Please sign in" in text(client, "/login")
