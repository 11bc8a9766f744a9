"""A FastAPI back office signing in with bpart_auth: the whole wiring in one file.

`create_app(auth, secret_key=...)` takes a sync `Auth` built by the caller (the tests pass
one on `MemoryStore` with the fake providers; `python fastapi_example.py` builds one on
SQLStore with Google and Microsoft from environment variables, bottom of the file) and
wraps it in `AsyncAuth`: every route is `async def`, and the store, the providers and
password hashing run in worker threads, never on the event loop.

`bpart_auth.starlette` does the security glue: its middleware, inside Starlette's
`SessionMiddleware` (signed cookies: `SameSite=Lax`, `HttpOnly`, `Secure` unless
`https_only=False`), refuses any POST the browser does not vouch for as this app's own
(`Sec-Fetch-Site` / `Origin`, which pages cannot forge: no token in the forms, and the
sign-in form is covered too), and reloads the account on every request, ending the
session when the account is gone, disabled, or its credentials changed since. Every
sign-in starts a fresh session (no fixation). Redirect flows are kept in the session
under their OAuth state, so several tabs each finish their own. An `AuthError` becomes
a notice on the page the user was on; an organization that must approve the app gets
a page with the admin-consent link for its IT department. The callback URL is the one
pinned in `Auth(redirect_uri=...)`. Any signed-in account may invite (no roles here).

Second factors (`auth.second_factors`, the `mfa` extra): an account may add an
authenticator app (a QR code and its key, confirmed by one code), passkeys, and gets ten
recovery codes with its first factor, shown once. Once it has one, a first factor (a
password, Google, Microsoft) only leads to the second step (the adapter redirects to
`/second-factor`): a code, a recovery code, or a passkey. Passkeys need a few lines of
script (the layout's `passkey`): the page fetches the options, the browser makes or uses
the passkey, and its answer goes back in an ordinary form post.
"""

from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Template
from starlette.middleware.sessions import SessionMiddleware

from bpart_auth import AdminConsentRequired, Auth
from bpart_auth.starlette import SignedIn, StarletteAuth, flash, notices

Field = Annotated[str, Form()]  # a form field
JSON = "application/json"


def create_app(auth: Auth, *, secret_key: str, https_only: bool = True) -> FastAPI:
    app = FastAPI()
    bpart = StarletteAuth(auth, app)  # wraps `auth` in AsyncAuth: bpart.auth
    second = bpart.auth.second_factors  # the account's second factors, on the session
    app.add_middleware(SessionMiddleware, secret_key=secret_key, https_only=https_only)

    def page(request, name, status=200, **context):  # TEMPLATES[name] in the layout
        context |= {"me": request.state.account, "notices": notices(request)}
        return HTMLResponse(Template(TEMPLATES[name], autoescape=True).render(context), status)

    # An organization must approve the app: a page with the link for its IT department.
    # Every other refusal is a notice on the page the user was on (the adapter's handler).
    app.add_exception_handler(AdminConsentRequired, lambda r, e: page(r, "consent", 403, error=e))

    @app.get("/")  # signed in: the account's page; otherwise the sign-in page
    async def home(request: Request):
        if (me := request.state.account) is None:
            return page(request, "login")
        factors, codes_left = await second.list(me.id), await second.recovery_codes_left(me.id)
        methods = await bpart.auth.sign_in_methods(me.id)
        return page(request, "home", methods=methods, factors=factors, codes_left=codes_left)

    @app.post("/login")
    async def login(request: Request, email: Field, password: Field):
        client = request.client and request.client.host  # for the sign-in throttle
        account = await bpart.auth.passwords.sign_in(email, password, client_address=client)
        return await bpart.sign_in(request, account, "You are signed in.")

    @app.post("/invites")
    async def invite_create(request: Request, email: Field, me: SignedIn):  # a real app emails it
        invite, token = await bpart.auth.invites.create(email, invited_by=me.id)
        link = request.url_for("invite", token=token)
        flash(request, f"Invitation for {invite.display_email}: {link}")
        return RedirectResponse("/", 303)

    @app.get("/invite/{token}")
    async def invite(request: Request, token: str):
        return page(request, "accept", invite=await bpart.auth.invites.check(token), token=token)

    @app.post("/invite/{token}/password")
    async def accept(request: Request, token: str, password: Field, name: Field = ""):
        account = await bpart.auth.invites.accept_with_password(token, password=password, name=name)
        return await bpart.sign_in(request, account, "Welcome! Your account is ready.")

    # The redirect flows, begun by a form and finished at the one callback URL; the
    # adapter's helpers are the endpoints ({provider}: a configured provider, else 404).
    app.add_route("/login/{provider}", bpart.sign_in_with, methods=["POST"])
    app.add_route("/link/{provider}", bpart.link, methods=["POST"])  # SignInRequired: to "/"
    app.add_route("/invite/{token}/{provider}", bpart.accept_invite_with, methods=["POST"])
    app.add_route("/auth/callback", bpart.complete)  # signed in, linked or registered
    app.add_route("/unlink/{provider}", bpart.unlink, methods=["POST"])  # others end, not this
    app.add_route("/logout", bpart.sign_out, methods=["POST"])
    second_factor_pages(app, second, page)
    return app


def second_factor_pages(app: FastAPI, second, page) -> None:  # noqa: C901 - short views
    """The second step, enrolment, recovery codes and passkeys (`auth.second_factors`).

    Every call works on the session: the signed-in account, or the sign-in pending its
    second step (or its enrolment, when the policy requires one).
    """

    def done(request, message, codes=()):  # recovery codes are shown once: never stored
        flash(request, message, "success")
        return page(request, "codes", codes=codes) if codes else RedirectResponse("/", 303)

    @app.get("/second-factor")  # where a first factor lands when the account has one
    async def second_step(request: Request):
        pending = await second.pending(request.session)
        return (
            page(request, "second_step", pending=pending) if pending else RedirectResponse("/", 303)
        )

    @app.post("/second-factor")  # a code from the authenticator app, or a recovery code
    async def verify(request: Request, code: Field):
        client = request.client and request.client.host  # for the throttle
        await second.verify(request.session, code, client_address=client)
        return done(request, "You are signed in.")

    @app.post("/second-factor/passkey/options")  # for navigator.credentials.get()
    async def passkey_options(request: Request):
        return Response(await second.begin_passkey(request.session), media_type=JSON)

    @app.post("/second-factor/passkey")  # the passkey's answer, posted by the page's script
    async def verify_passkey(request: Request, credential: Field):
        client = request.client and request.client.host
        await second.complete_passkey(request.session, credential, client_address=client)
        return done(request, "You are signed in.")

    @app.get("/second-factor/enrol")  # signed in, or finishing a sign-in that requires one
    async def enrol(request: Request):
        return page(request, "enrol", totp=await second.begin_totp(request.session))

    @app.post("/second-factor/enrol")
    async def enrol_confirm(request: Request, code: Field, name: Field = "Authenticator app"):
        added = await second.confirm_totp(request.session, code, name=name)
        return done(request, "Authenticator app added.", added.recovery_codes)

    @app.post("/passkeys/options")  # for navigator.credentials.create()
    async def passkey_registration_options(request: Request):
        options = await second.begin_passkey_registration(request.session)
        return Response(options, media_type=JSON)

    @app.post("/passkeys")  # the new passkey, posted by the page's script
    async def passkey_add(request: Request, credential: Field, name: Field = "Passkey"):
        added = await second.complete_passkey_registration(request.session, credential, name=name)
        return done(request, "Passkey added.", added.recovery_codes)

    @app.post("/second-factor/{factor_id}/remove")
    async def factor_remove(request: Request, factor_id: str):
        removed = await second.remove(request.session, factor_id)
        return done(request, f"{removed.name} removed.")

    @app.post("/second-factor/recovery-codes")  # the old ones stop working
    async def recovery_codes(request: Request):
        codes = await second.regenerate_recovery_codes(request.session)
        return done(request, "New recovery codes.", codes)


LAYOUT_TEMPLATE = """<!doctype html><title>Back office</title>
{% macro button(action, label) %}<form method="post" action="{{ action }}">
<button>{{ label }}</button></form>{% endmacro %}
{% macro passkey(action, ceremony, label) %}<form method="post" action="{{ action }}"
onsubmit="event.preventDefault(); passkey(this, '{{ ceremony }}')"><input type="hidden"
name="credential">{{ caller() if caller }}<button>{{ label }}</button></form>{% endmacro %}
{% for notice in notices %}<p class="flash {{ notice.category }}">{{ notice.message }}</p>
{% endfor %}
<script>
// A passkey ceremony: fetch the options (POST {action}/options), let the browser make or
// use the passkey, post its answer with the form. A refusal's notice waits on a reload.
async function passkey(form, ceremony) {
  const answer = await fetch(form.action + "/options", {method: "POST", redirect: "manual"});
  if (!answer.ok) return location.reload();
  const parse = ceremony === "create" ? "parseCreationOptionsFromJSON"
    : "parseRequestOptionsFromJSON";
  const options = PublicKeyCredential[parse](await answer.json());
  const credential = await navigator.credentials[ceremony]({publicKey: options});
  form.credential.value = JSON.stringify(credential.toJSON());
  form.submit();
}
</script>"""
# Each page is the layout followed by its own part.
TEMPLATES = {
    name: LAYOUT_TEMPLATE + page
    for name, page in {
        "login": """<form method="post" action="/login">
<input name="email" type="email" placeholder="Email">
<input name="password" type="password" placeholder="Password"><button>Sign in</button></form>
{{ button("/login/google", "Sign in with Google") }}
{{ button("/login/microsoft", "Sign in with Microsoft") }}""",
        "home": """<p>Signed in as {{ me.display_email }}.
Password: {{ "yes" if methods.password else "no" }}.</p>
{% for p in ["google", "microsoft"] %}{% if p in methods.providers %}
{{ button("/unlink/" ~ p, "Unlink " ~ p|capitalize) }}{% else %}
{{ button("/link/" ~ p, "Link " ~ p|capitalize) }}{% endif %}{% endfor %}
<h2>Second factors</h2><ul>{% for factor in factors %}
<li>{{ factor.name }} ({{ "passkey" if factor.kind == "passkey" else "authenticator app" }})
{{ button("/second-factor/" ~ factor.id ~ "/remove", "Remove") }}</li>{% endfor %}</ul>
{% if factors %}<p>Recovery codes left: {{ codes_left }}.</p>
{{ button("/second-factor/recovery-codes", "New recovery codes") }}{% endif %}
<p><a href="/second-factor/enrol">Add an authenticator app</a></p>
{% call passkey("/passkeys", "create", "Add a passkey") %}
<input name="name" placeholder="Passkey name">{% endcall %}
<form method="post" action="/invites">
<input name="email" type="email" placeholder="Email"><button>Invite a manager</button></form>
{{ button("/logout", "Sign out") }}""",
        "consent": """<h1>Your organization must approve this app</h1><p>{{ error }}</p>
<p>Send this link to your IT department:
<a href="{{ error.consent_url }}">{{ error.consent_url }}</a></p>
<p><a href="/">Back to sign-in</a></p>""",
        "accept": """<p>Invitation for {{ invite.display_email }}</p>
<form method="post" action="/invite/{{ token }}/password">
<input name="name" placeholder="Name">
<input name="password" type="password" placeholder="New password"><button>Accept</button></form>
{{ button("/invite/" ~ token ~ "/google", "Accept with Google") }}
{{ button("/invite/" ~ token ~ "/microsoft", "Accept with Microsoft") }}""",
        "second_step": """<h1>One more step</h1>
<p>{{ pending.account.display_email }}: enter the code from your authenticator app, or one
of your recovery codes ({{ pending.recovery_codes }} left).</p>
<form method="post" action="/second-factor">
<input name="code" autocomplete="one-time-code" placeholder="Code"><button>Verify</button></form>
{% if "passkey" in pending.kinds %}{{ passkey("/second-factor/passkey", "get", "Use a passkey") }}
{% endif %}<p><a href="/">Start again</a></p>""",
        "enrol": """<h1>Add an authenticator app</h1>
<p>Scan this code with the app{{ " (this site requires one)" if not me }}:</p>
{{ totp.qr_svg|safe }}
<p>Or type this key: <code class="secret">{{ totp.secret }}</code></p>
<form method="post" action="/second-factor/enrol">
<input name="name" placeholder="Name (Phone)">
<input name="code" autocomplete="one-time-code" placeholder="Code from the app">
<button>Add the app</button></form>
{% call passkey("/passkeys", "create", "Add a passkey instead") %}{% endcall %}
<p><a href="/">Cancel</a></p>""",
        "codes": """<h1>Your recovery codes</h1>
<p>Keep them somewhere safe: each one signs you in once if you lose your authenticator.
They are shown only now.</p>
<ul class="recovery-codes">{% for code in codes %}<li><code>{{ code }}</code></li>{% endfor %}
</ul><p><a href="/">Continue</a></p>""",
    }.items()
}


if __name__ == "__main__":  # a deployment: configuration from the environment
    import os
    from urllib.parse import urlsplit

    import uvicorn

    from bpart_auth import GoogleProvider, MicrosoftProvider, SecondFactorPolicy, SQLStore
    from bpart_auth.passkeys import RelyingParty

    env = os.environ
    google = GoogleProvider(client_id=env["GOOGLE_CLIENT_ID"], client_secret=env["GOOGLE_SECRET"])
    entra = MicrosoftProvider(client_id=env["MICROSOFT_ID"], client_secret=env["MICROSOFT_SECRET"])
    site = urlsplit(env["CALLBACK_URL"])
    passkeys = RelyingParty(site.hostname, "Back office", [f"{site.scheme}://{site.netloc}"])
    auth = Auth(
        SQLStore(env.get("DATABASE_URL", "sqlite:///bpart_auth.db")),
        secret_key=env["BPART_AUTH_SECRET_KEY"],
        providers=[google, entra],
        redirect_uri=env["CALLBACK_URL"],  # https://your.host/auth/callback, as registered
        # Passkeys belong to the callback's host; authenticator apps show the issuer.
        second_factor=SecondFactorPolicy(issuer="Back office", relying_party=passkeys),
    )
    app = create_app(auth, secret_key=env["SESSION_SECRET_KEY"])
    # Behind a proxy: its X-Forwarded-* give the client's address (the sign-in throttle).
    uvicorn.run(app, port=int(env.get("PORT", "8000")), proxy_headers=True)
