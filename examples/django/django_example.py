"""A Django back office signing in with bpart_auth: one file, no database for Django.

`configure(auth, secret_key=...)` sets Django's settings (the first time) and hands
the views their `Auth`. Sessions are Django's own, in signed cookies
(`signed_cookies` backend, `SameSite=Lax` so the provider's redirect back carries
them; add `SESSION_COOKIE_SECURE=True` behind HTTPS). The session holds the account's
stamp (`auth.sessions.stamp`: its id and the version of its credentials) and, while a
redirect is under way, the sealed flow state; every sign-in starts a fresh session.
`CsrfViewMiddleware` stays on: every POST form carries `{% csrf_token %}`. The
callback URL is the one pinned in `Auth(redirect_uri=...)`.

Accounts live in bpart_auth's store, not in `django.contrib.auth`. An app that has
Django's `User` (for the admin site and permissions) keeps it and maps the two one of
two ways: store the bpart_auth account id on its user (a unique `bpart_account_id`
field on a custom user or a profile row), and where this example stores the account's
stamp in the session after `auth.complete(...)` or `sign_in_with_password(...)`, look
that user up instead and call `django.contrib.auth.login(request, user)`; or keep
this example's session key and load the `User` by that field in a middleware. Either
way bpart_auth stays the authority on credentials: keep the stamp too, check
`auth.sessions.account(...)` on each request as `_account` does below, and call
`logout(request)` when it says no.
"""

import functools
from typing import get_args

import django.conf
from django.contrib import messages
from django.http import HttpResponse
from django.middleware.csrf import rotate_token
from django.shortcuts import redirect
from django.template import engines
from django.urls import path, re_path
from django.views.decorators.http import require_POST

from bpart_auth import AdminConsentRequired, Auth, AuthError, ProviderName

_app: dict[str, Auth] = {}


def configure(auth: Auth, *, secret_key: str) -> None:
    """Configure Django (once per process) and serve `auth` from now on."""
    if not django.conf.settings.configured:  # once per process
        django.conf.settings.configure(
            DEBUG=False,
            SECRET_KEY=secret_key,
            ROOT_URLCONF=__name__,
            ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
            INSTALLED_APPS=["django.contrib.sessions", "django.contrib.messages"],
            MIDDLEWARE=[
                "django.middleware.security.SecurityMiddleware",
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
                "django.middleware.clickjacking.XFrameOptionsMiddleware",
            ],
            SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
            SESSION_COOKIE_SAMESITE="Lax",
            SESSION_COOKIE_HTTPONLY=True,
            MESSAGE_STORAGE="django.contrib.messages.storage.session.SessionStorage",
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "OPTIONS": {
                        "context_processors": [
                            "django.contrib.messages.context_processors.messages"
                        ]
                    },
                }
            ],
        )
        django.setup()
    _app["auth"] = auth


def _auth() -> Auth:
    return _app["auth"]


LAYOUT = """<!doctype html><title>Back office</title>
{% for message in messages %}<p class="{{ message.tags }}">{{ message }}</p>{% endfor %}
"""
LOGIN = """<form method="post" action="/login">{% csrf_token %}
<input name="email" type="email"> <input name="password" type="password">
<button>Sign in</button></form>
{% for p in providers %}<form method="post" action="/login/{{ p }}">{% csrf_token %}
<button>Sign in with {{ p|capfirst }}</button></form>{% endfor %}"""
HOME = """<p>Signed in as {{ account.display_email }}. <a href="/profile">Profile</a>
<a href="/admin/invites">Invitations</a></p>
<form method="post" action="/logout">{% csrf_token %}<button>Sign out</button></form>"""
PROFILE = """<p>{{ account.display_email }}; password: {{ methods.password|yesno }}</p>
{% for p in providers %}{% if p in methods.providers %}
<form method="post" action="/profile/unlink/{{ p }}">{% csrf_token %}
<button>Unlink {{ p|capfirst }}</button></form>{% else %}
<form method="post" action="/profile/link/{{ p }}">{% csrf_token %}
<button>Link {{ p|capfirst }}</button></form>{% endif %}{% endfor %}"""
CONSENT = """<p>{{ message }}</p><p><a href="{{ url }}">{{ url }}</a></p>"""
ACCEPT = """<p>Invitation for {{ email }}</p>
<form method="post" action="/invite/{{ token }}/password">{% csrf_token %}
<input name="name"> <input name="password" type="password"><button>Accept</button></form>
{% for p in providers %}<form method="post" action="/invite/{{ token }}/{{ p }}">
{% csrf_token %}<button>Accept with {{ p|capfirst }}</button></form>{% endfor %}"""
INVITES = """<form method="post" action="/admin/invites">{% csrf_token %}
<input name="email" type="email"><button>Invite</button></form>
<ul>{% for invite in pending %}<li>{{ invite.display_email }}</li>{% endfor %}</ul>"""
PROVIDERS = get_args(ProviderName)  # ("google", "microsoft"): unconfigured ones say so


def _render(request, body, status=200, **context):
    template = engines["django"].from_string(LAYOUT + body)
    html = template.render({"providers": PROVIDERS, **context}, request)
    return HttpResponse(html, status=status)


def _sign_in(request, account):
    request.session.flush()  # a fresh session, under a new key: nothing from before survives
    rotate_token(request)
    request.session["account"] = _auth().sessions.stamp(account)


def _account(request):
    """The session's account, checked afresh; None, and the session ended, if invalid."""
    account = _auth().sessions.account(request.session.get("account"))
    if account is None and "account" in request.session:  # gone, disabled, credentials changed
        request.session.flush()
        messages.info(request, "Your session has ended. Please sign in again.")
    return account


def _signed_in(view):
    """Pass the signed-in account to `view`; without one, send the user to sign in."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        account = _account(request)
        if account is None:
            return redirect("/login")
        return view(request, account, *args, **kwargs)

    return wrapper


def login(request):
    if request.method == "POST":
        try:
            account = _auth().sign_in_with_password(
                request.POST.get("email", ""),
                request.POST.get("password", ""),
                client_address=request.META.get("REMOTE_ADDR"),
            )
        except AuthError as error:
            messages.error(request, str(error))
            return redirect("/login")
        _sign_in(request, account)
        return redirect("/")
    return _render(request, LOGIN)


@require_POST
def login_with(request, provider):
    try:
        start = _auth().begin_sign_in(provider)
    except AuthError as error:
        messages.error(request, str(error))
        return redirect("/login")
    request.session["bpart_state"] = start.sealed_flow
    return redirect(start.url)


def callback(request):
    """The one callback: sign-in, linking and invitations."""
    me = _account(request)
    try:
        outcome = _auth().complete(
            sealed_flow=request.session.pop("bpart_state", ""),
            params=request.GET.dict(),
            signed_in_account_id=me and me.id,
        )
    except AdminConsentRequired as error:
        return _render(request, CONSENT, status=403, message=str(error), url=error.consent_url)
    except AuthError as error:
        messages.error(request, str(error))
        return redirect("/profile" if me else "/login")
    _sign_in(request, outcome.account)  # a link stamped the credentials: stamp the session too
    if outcome.kind == "linked":
        messages.success(request, outcome.message)
    return redirect(outcome.return_to or "/")


@_signed_in
def home(request, account):
    return _render(request, HOME, account=account)


@_signed_in
def profile(request, account):
    methods = _auth().sign_in_methods(account.id)
    return _render(request, PROFILE, account=account, methods=methods)


@require_POST
@_signed_in
def link(request, account, provider):
    try:
        start = _auth().begin_link(provider, account_id=account.id, return_to="/profile")
    except AuthError as error:
        messages.error(request, str(error))
        return redirect("/profile")
    request.session["bpart_state"] = start.sealed_flow
    return redirect(start.url)


@require_POST
@_signed_in
def unlink(request, account, provider):
    try:
        account = _auth().unlink(account.id, provider)
    except AuthError as error:  # LastSignInMethod
        messages.error(request, str(error))
    else:  # unlinking changed the credentials: keep this session, end the others
        request.session["account"] = _auth().sessions.stamp(account)
        messages.success(request, f"{provider.capitalize()} is no longer linked.")
    return redirect("/profile")


@require_POST
def logout(request):
    request.session.flush()
    return redirect("/login")


def invite(request, token):
    try:
        pending = _auth().invites.check(token)
    except AuthError as error:
        return _render(request, "<p>{{ message }}</p>", status=410, message=str(error))
    return _render(request, ACCEPT, email=pending.display_email, token=token)


@require_POST
def accept_with_password(request, token):
    try:
        account = _auth().invites.accept_with_password(
            token, password=request.POST.get("password", ""), name=request.POST.get("name", "")
        )
    except AuthError as error:
        messages.error(request, str(error))
        return redirect(f"/invite/{token}")
    _sign_in(request, account)
    return redirect("/")


@require_POST
def accept_with(request, token, provider):
    try:
        start = _auth().invites.begin_accept(provider, token)
    except AuthError as error:
        messages.error(request, str(error))
        return redirect(f"/invite/{token}")
    request.session["bpart_state"] = start.sealed_flow
    return redirect(start.url)


@_signed_in
def invites(request, account):
    if request.method == "POST":
        try:
            sent, token = _auth().invites.create(
                request.POST.get("email", ""), invited_by=account.id
            )
        except AuthError as error:
            messages.error(request, str(error))
        else:  # a real app emails the link; shown here so the example runs without mail
            url = request.build_absolute_uri(f"/invite/{token}")
            messages.success(request, f"Invitation for {sent.display_email}: {url}")
        return redirect("/admin/invites")
    return _render(request, INVITES, pending=_auth().invites.pending())


_PROVIDER = "(?P<provider>{})".format("|".join(PROVIDERS))
urlpatterns = [
    path("", home),
    path("login", login),
    re_path(rf"^login/{_PROVIDER}$", login_with),
    path("auth/callback", callback),
    path("profile", profile),
    re_path(rf"^profile/link/{_PROVIDER}$", link),
    re_path(rf"^profile/unlink/{_PROVIDER}$", unlink),
    path("logout", logout),
    path("invite/<str:token>", invite),
    path("invite/<str:token>/password", accept_with_password),
    re_path(rf"^invite/(?P<token>[^/]+)/{_PROVIDER}$", accept_with),
    path("admin/invites", invites),
]
