"""A Django back office signing in with bpart_auth, on its Django adapter: one file, no database.

`settings_for(auth, secret_key=...)` is the whole Django configuration: `configure`
applies it (once per process; the tests override it per test), and `python
django_example.py` builds an `Auth` on SQLStore with Google and Microsoft from the
environment (bottom of the file). The `Auth` pins the app's callback URL
(`redirect_uri=`), which every redirect flow uses.

`bpart_auth.django` does the security glue, so this file has views and templates
only. `AuthMiddleware` puts the signed-in account on `request.account` and ends the
session when that account is gone, disabled, or its credentials changed elsewhere;
every sign-in starts a fresh session under a new key, with a new CSRF token (nothing
planted before survives it). Each redirect flow is kept in the session under its own
OAuth state, so several tabs each finish their own flow, and a flow begun in another
browser is refused. A refusal (`AuthError`) becomes a message on the page the user was
on; an organization that must approve the app gets a page with the admin-consent URL.

Second factors (`Auth(second_factor=SecondFactorPolicy(...))`, the `mfa` extra): the
profile lists the account's authenticator apps and passkeys with Remove, adds an app
(a QR code inline, the secret as text, and one code to confirm) or a passkey, and
regenerates recovery codes. A first factor on an account with one (a password, Google,
Microsoft) does not sign in: the adapter sends the browser to /second-factor (Django
settings `BPART_AUTH_SECOND_FACTOR_URL`, `BPART_AUTH_ENROL_URL`), which asks for a code
from the app, a recovery code, or the passkey; `finish_sign_in` then gives the new
session its CSRF token. Recovery codes are shown once, in the answer to the POST that
made them (never stored in the session or a message), and pages holding a secret are
not cached. The passkey buttons run a few lines of inline JS: they fetch the options
(a POST carrying Django's CSRF token in the `X-CSRFToken` header), ask the browser
(`navigator.credentials`), and post its answer back in an ordinary form.

Forged requests: Django's `CsrfViewMiddleware` stays on, and every POST form carries
`{% csrf_token %}`. Sessions are Django's own, kept server-side in Django's cache, so
signing out revokes a session rather than forgets its cookie: the default local-memory
cache serves one process; with several, configure a shared cache (Django's
`RedisCache`) or the database backend. Cookies are `SameSite=Lax` (Django's default,
so the provider's redirect back carries them) and `HttpOnly`; add
`SESSION_COOKIE_SECURE` and `CSRF_COOKIE_SECURE` behind HTTPS.

Accounts live in bpart_auth's store, not in `django.contrib.auth`. An app that keeps
Django's `User` (for the admin site and permissions) stores the bpart_auth account id
on it (a unique field) and loads that user from `request.account` where it needs one;
bpart_auth stays the authority on credentials and sessions.
"""

import django.conf
from django.contrib.messages import success
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template import engines
from django.urls import path, re_path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from bpart_auth import AdminConsentRequired, Auth
from bpart_auth import django as bpart
from bpart_auth.django import get_auth, login_required

PROVIDERS = ("google", "microsoft")  # unconfigured ones say so


def settings_for(auth: Auth, *, secret_key: str) -> dict:
    return {
        "SECRET_KEY": secret_key,
        "ROOT_URLCONF": __name__,
        "ALLOWED_HOSTS": ["testserver", "127.0.0.1", "localhost"],
        "INSTALLED_APPS": ["django.contrib.sessions", "django.contrib.messages"],
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "bpart_auth.django.AuthMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "SESSION_ENGINE": "django.contrib.sessions.backends.cache",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "context_processors": ["django.contrib.messages.context_processors.messages"]
                },
            }
        ],
        "BPART_AUTH": auth,
        "LOGIN_URL": "/login",
        "LOGIN_REDIRECT_URL": "/",
        "BPART_AUTH_SECOND_FACTOR_URL": "/second-factor",
        "BPART_AUTH_ENROL_URL": "/second-factor/enrol",
    }


def configure(auth: Auth, *, secret_key: str) -> None:
    """Configure Django to serve `auth`, once per process."""
    if not django.conf.settings.configured:
        django.conf.settings.configure(**settings_for(auth, secret_key=secret_key))
        django.setup()


def render(request, name, status=200, **context):
    template = engines["django"].from_string(PAGE_TEMPLATES["layout"] + PAGE_TEMPLATES[name])
    context = {"account": request.account, "providers": PROVIDERS, **context}
    return HttpResponse(template.render(context, request), status=status)


def login(request):
    if request.method != "POST":
        return render(request, "login")
    email, password = request.POST.get("email", ""), request.POST.get("password", "")
    address = request.META.get("REMOTE_ADDR")
    account = get_auth().passwords.sign_in(email, password, client_address=address)
    return bpart.sign_in(request, account)


def callback(request):  # the one callback: sign-in, linking and invitations
    try:
        return bpart.complete(request)
    except AdminConsentRequired as error:  # other refusals: a message where the user was
        return render(request, "consent", status=403, error=error)


@login_required
def home(request):
    return render(request, "home")


@login_required
def profile(request):
    auth, me = get_auth(), request.account.id
    factors, codes_left = auth.second_factors.list(me), auth.second_factors.recovery_codes_left(me)
    methods = auth.sign_in_methods(me)
    return render(request, "profile", methods=methods, factors=factors, codes_left=codes_left)


def second_factor(request):  # after a first factor: a code, a recovery code, or a passkey
    if request.method == "POST":  # no sign-in pending, or a wrong code: a message
        code, address = request.POST.get("code", ""), request.META.get("REMOTE_ADDR")
        get_auth().second_factors.verify(request.session, code, client_address=address)
        bpart.finish_sign_in(request)
        return redirect("/")
    pending = get_auth().second_factors.pending(request.session)
    return render(request, "second_factor", pending=pending) if pending else redirect("/login")


@require_POST
def passkey_sign_in(request):  # the second step, or passwordless from the login page
    credential, address = request.POST.get("credential", ""), request.META.get("REMOTE_ADDR")
    get_auth().second_factors.complete_passkey(request.session, credential, client_address=address)
    bpart.finish_sign_in(request)
    return redirect("/")


@require_POST
def passkey_options(request, ceremony):  # JSON for navigator.credentials.create() / get()
    factors = get_auth().second_factors
    begin = factors.begin_passkey_registration if ceremony == "create" else factors.begin_passkey
    return HttpResponse(begin(request.session), content_type="application/json")


@never_cache  # the page shows the new secret
def enrol(request):  # signed in, or sent here by a policy requiring a second factor
    factors = get_auth().second_factors
    if request.method != "POST":
        return render(request, "enrol", totp=factors.begin_totp(request.session))
    code, name = request.POST.get("code", ""), request.POST.get("name") or "Authenticator app"
    return enrolled(request, factors.confirm_totp(request.session, code, name=name))


@never_cache
@require_POST
def add_passkey(request):
    credential, name = request.POST.get("credential", ""), request.POST.get("name") or "Passkey"
    factors = get_auth().second_factors
    return enrolled(
        request, factors.complete_passkey_registration(request.session, credential, name=name)
    )


def enrolled(request, result):
    if result.signed_in:  # it finished a sign-in that had to enrol first
        bpart.finish_sign_in(request)
    success(request, f"{result.factor.name} added.")
    if not result.recovery_codes:
        return redirect("/profile")
    return render(request, "recovery_codes", codes=result.recovery_codes)


@never_cache
@require_POST
def recovery_codes(request):  # the old ones stop working
    codes = get_auth().second_factors.regenerate_recovery_codes(request.session)
    return render(request, "recovery_codes", codes=codes)


@require_POST
def remove_factor(request, factor_id):
    factor = get_auth().second_factors.remove(request.session, factor_id)
    success(request, f"{factor.name} removed.")
    return redirect("/profile")


@require_POST
def link(request, provider):  # SignInRequired when signed out
    return bpart.link(request, provider, return_to="/profile")


@require_POST
def unlink(request, provider):  # this session goes on, the others end
    message = f"{provider.capitalize()} is no longer linked."
    return bpart.unlink(request, provider, message, to="/profile")


def invite(request, token):
    return render(request, "accept", invite=get_auth().invites.check(token), token=token)


@require_POST
def accept_with_password(request, token):
    password, name = request.POST.get("password", ""), request.POST.get("name", "")
    account = get_auth().invites.accept_with_password(token, password=password, name=name)
    return bpart.sign_in(request, account, "Welcome! Your account is ready.")


@login_required
def invites(request):
    if request.method != "POST":
        return render(request, "invites", pending=get_auth().invites.pending())
    email, me = request.POST.get("email", ""), request.account.id
    sent, token = get_auth().invites.create(email, invited_by=me)
    url = request.build_absolute_uri(f"/invite/{token}")  # a real app emails it
    success(request, f"Invitation for {sent.display_email}: {url}")
    return redirect("/admin/invites")


PROVIDER = "(?P<provider>google|microsoft)"
urlpatterns = [
    path("", home),
    path("login", login),
    re_path(rf"^login/{PROVIDER}$", require_POST(bpart.sign_in_with)),
    path("auth/callback", callback),
    path("profile", profile),
    re_path(rf"^profile/link/{PROVIDER}$", link),
    re_path(rf"^profile/unlink/{PROVIDER}$", unlink),
    path("logout", require_POST(bpart.sign_out)),
    path("invite/<str:token>", invite),
    path("invite/<str:token>/password", accept_with_password),
    re_path(rf"^invite/(?P<token>[^/]+)/{PROVIDER}$", require_POST(bpart.accept_invite_with)),
    path("admin/invites", invites),
    path("second-factor", second_factor),
    path("second-factor/passkey", passkey_sign_in),
    re_path(r"^passkeys/options/(?P<ceremony>create|get)$", passkey_options),
    path("second-factor/enrol", enrol),
    path("second-factor/passkeys", add_passkey),
    path("second-factor/recovery-codes", recovery_codes),
    path("second-factor/<str:factor_id>/remove", remove_factor),
]

PAGE_TEMPLATES = {
    "layout": """<!doctype html><title>Back office</title>
{% for message in messages %}<p class="{{ message.tags }}">{{ message }}</p>{% endfor %}
<script>
async function passkey(form, ceremony) {  // options from the server, the browser's answer back
  const csrf = {"X-CSRFToken": form.csrfmiddlewaretoken.value};
  const answer = await fetch(`/passkeys/options/${ceremony}`, {method: "POST", headers: csrf});
  const options = await answer.json(), pk = PublicKeyCredential;
  const credential = ceremony === "create"
    ? await navigator.credentials.create({publicKey: pk.parseCreationOptionsFromJSON(options)})
    : await navigator.credentials.get({publicKey: pk.parseRequestOptionsFromJSON(options)});
  form.credential.value = JSON.stringify(credential.toJSON());
  form.submit();
}
</script>
""",
    "login": """<form method="post" action="/login">{% csrf_token %}
<input name="email" type="email"> <input name="password" type="password">
<button>Sign in</button></form>
{% for p in providers %}<form method="post" action="/login/{{ p }}">{% csrf_token %}
<button>Sign in with {{ p|capfirst }}</button></form>{% endfor %}
<form method="post" action="/second-factor/passkey"
 onsubmit="event.preventDefault(); passkey(this, 'get')">{% csrf_token %}
<input type="hidden" name="credential"><button>Sign in with a passkey</button></form>""",
    "home": """<p>Signed in as {{ account.display_email }}. <a href="/profile">Profile</a>
<a href="/admin/invites">Invitations</a></p>
<form method="post" action="/logout">{% csrf_token %}<button>Sign out</button></form>""",
    "profile": """<p>{{ account.display_email }}; password: {{ methods.password|yesno }}</p>
{% for p in providers %}{% if p in methods.providers %}
<form method="post" action="/profile/unlink/{{ p }}">{% csrf_token %}
<button>Unlink {{ p|capfirst }}</button></form>{% else %}
<form method="post" action="/profile/link/{{ p }}">{% csrf_token %}
<button>Link {{ p|capfirst }}</button></form>{% endif %}{% endfor %}
<h2>Second factors</h2><ul>{% for f in factors %}
<li>{{ f.name }} ({% if f.kind == "totp" %}authenticator app{% else %}passkey{% endif %}),
added {{ f.created_at|date:"Y-m-d" }},
last used {{ f.last_used_at|date:"Y-m-d H:i"|default:"never" }}
<form method="post" action="/second-factor/{{ f.id }}/remove">{% csrf_token %}
<button>Remove {{ f.name }}</button></form></li>{% empty %}<li>None yet.</li>{% endfor %}</ul>
<p><a href="/second-factor/enrol">Add an authenticator app</a></p>
<form method="post" action="/second-factor/passkeys"
 onsubmit="event.preventDefault(); passkey(this, 'create')">{% csrf_token %}
<input type="hidden" name="credential"><input name="name" placeholder="Passkey name">
<button>Add a passkey</button></form>
{% if factors %}<form method="post" action="/second-factor/recovery-codes">{% csrf_token %}
{{ codes_left }} recovery codes left.
<button>Regenerate recovery codes</button></form>{% endif %}""",
    "second_factor": """<h1>One more step</h1>
<p>Signing in as {{ pending.account.display_email }}.</p>
<form method="post" action="/second-factor">{% csrf_token %}
<label>Code from your authenticator app, or a recovery code
<input name="code" autocomplete="one-time-code" autofocus></label><button>Verify</button></form>
{% if "passkey" in pending.kinds %}<form method="post" action="/second-factor/passkey"
 onsubmit="event.preventDefault(); passkey(this, 'get')">{% csrf_token %}
<input type="hidden" name="credential"><button>Use a passkey</button></form>{% endif %}""",
    "enrol": """<h1>Add an authenticator app</h1>
<p>Scan this QR code with the app, or type the secret:
<code id="secret">{{ totp.secret }}</code></p>
{{ totp.qr_svg|safe }}
<form method="post" action="/second-factor/enrol">{% csrf_token %}
<input name="name" placeholder="Name (e.g. Phone)"> <input name="code" autocomplete="one-time-code">
<button>Confirm</button></form>
{% if not account %}<p>Or add a passkey:</p><form method="post" action="/second-factor/passkeys"
 onsubmit="event.preventDefault(); passkey(this, 'create')">{% csrf_token %}
<input type="hidden" name="credential"><button>Add a passkey</button></form>{% endif %}""",
    "recovery_codes": """<h1>Your recovery codes</h1>
<p>Keep them somewhere safe: each works once in place of a code, and they are not shown again.</p>
<ul id="recovery-codes">{% for code in codes %}<li>{{ code }}</li>{% endfor %}</ul>
<p><a href="/profile">Done</a></p>""",
    "consent": """<h1>Your organization must approve this app</h1><p>{{ error }}</p>
<p>Send this link to your IT department:
<a href="{{ error.consent_url }}">{{ error.consent_url }}</a></p>""",
    "accept": """<p>Invitation for {{ invite.display_email }}</p>
<form method="post" action="/invite/{{ token }}/password">{% csrf_token %}
<input name="name"> <input name="password" type="password"><button>Accept</button></form>
{% for p in providers %}<form method="post" action="/invite/{{ token }}/{{ p }}">
{% csrf_token %}<button>Accept with {{ p|capfirst }}</button></form>{% endfor %}""",
    "invites": """<form method="post" action="/admin/invites">{% csrf_token %}
<input name="email" type="email"><button>Invite</button></form>
<ul>{% for invite in pending %}<li>{{ invite.display_email }}</li>{% endfor %}</ul>""",
}

if __name__ == "__main__":  # configuration from the environment; a WSGI server in production
    import os
    import sys
    from urllib.parse import urlsplit

    from django.core.management import execute_from_command_line

    from bpart_auth import GoogleProvider, MicrosoftProvider, SecondFactorPolicy, SQLStore
    from bpart_auth.passkeys import RelyingParty

    env = os.environ
    site = urlsplit(env["CALLBACK_URL"])  # the browser's origin: passkeys are bound to it
    google = GoogleProvider(client_id=env["GOOGLE_CLIENT_ID"], client_secret=env["GOOGLE_SECRET"])
    entra = MicrosoftProvider(client_id=env["MICROSOFT_ID"], client_secret=env["MICROSOFT_SECRET"])
    auth = Auth(
        SQLStore(env.get("DATABASE_URL", "sqlite:///bpart_auth.db")),
        secret_key=env["BPART_AUTH_SECRET_KEY"],
        providers=[google, entra],
        redirect_uri=env["CALLBACK_URL"],  # https://your.host/auth/callback, as registered
        second_factor=SecondFactorPolicy(  # passkeys for this host; "required=True" for all
            relying_party=RelyingParty(
                site.hostname, "Back office", [f"{site.scheme}://{site.netloc}"]
            )
        ),
    )
    configure(auth, secret_key=env["DJANGO_SECRET_KEY"])
    execute_from_command_line([sys.argv[0], "runserver", *sys.argv[1:]])
