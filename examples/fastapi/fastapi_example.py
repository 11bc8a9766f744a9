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
"""

from typing import Annotated

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Template
from starlette.middleware.sessions import SessionMiddleware

from bpart_auth import AdminConsentRequired, Auth
from bpart_auth.starlette import SignedIn, StarletteAuth, flash, notices

Field = Annotated[str, Form()]  # a form field


def create_app(auth: Auth, *, secret_key: str, https_only: bool = True) -> FastAPI:
    app = FastAPI()
    bpart = StarletteAuth(auth, app)  # wraps `auth` in AsyncAuth: bpart.auth
    app.add_middleware(SessionMiddleware, secret_key=secret_key, https_only=https_only)

    def page(request, name, status=200, **context):  # TEMPLATES[name] in the layout
        context |= {"me": request.state.account, "notices": notices(request)}
        return HTMLResponse(Template(TEMPLATES[name], autoescape=True).render(context), status)

    # An organization must approve the app: a page with the link for its IT department.
    # Every other refusal is a notice on the page the user was on (the adapter's handler).
    app.add_exception_handler(AdminConsentRequired, lambda r, e: page(r, "consent", 403, error=e))

    @app.get("/")  # signed in: the account's page; otherwise the sign-in page
    async def home(request: Request):
        methods = (me := request.state.account) and await bpart.auth.sign_in_methods(me.id)
        return page(request, "home" if me else "login", methods=methods)

    @app.post("/login")
    async def login(request: Request, email: Field, password: Field):
        client = request.client and request.client.host  # for the sign-in throttle
        account = await bpart.auth.sign_in_with_password(email, password, client_address=client)
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
    return app


LAYOUT_TEMPLATE = """<!doctype html><title>Back office</title>
{% macro button(action, label) %}<form method="post" action="{{ action }}">
<button>{{ label }}</button></form>{% endmacro %}
{% for notice in notices %}<p class="flash {{ notice.category }}">{{ notice.message }}</p>
{% endfor %}"""
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
    }.items()
}


if __name__ == "__main__":  # a deployment: configuration from the environment
    import os

    import uvicorn

    from bpart_auth import GoogleProvider, MicrosoftProvider, SQLStore

    env = os.environ
    google = GoogleProvider(client_id=env["GOOGLE_CLIENT_ID"], client_secret=env["GOOGLE_SECRET"])
    entra = MicrosoftProvider(client_id=env["MICROSOFT_ID"], client_secret=env["MICROSOFT_SECRET"])
    auth = Auth(
        SQLStore(env.get("DATABASE_URL", "sqlite:///bpart_auth.db")),
        secret_key=env["BPART_AUTH_SECRET_KEY"],
        providers=[google, entra],
        redirect_uri=env["CALLBACK_URL"],  # https://your.host/auth/callback, as registered
    )
    app = create_app(auth, secret_key=env["SESSION_SECRET_KEY"])
    # Behind a proxy: its X-Forwarded-* give the client's address (the sign-in throttle).
    uvicorn.run(app, port=int(env.get("PORT", "8000")), proxy_headers=True)
