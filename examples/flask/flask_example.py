"""A Flask back office signing in with bpart_auth, on its Flask adapter: the whole app.

`create_app(auth, secret_key=...)` takes an `Auth` built by the caller: the tests pass
one on `MemoryStore` with the fake providers; `python flask_example.py` builds one on
SQLStore with Google and Microsoft from the environment (bottom of the file). The
`Auth` pins the app's callback URL (`redirect_uri=`), which is also the origin its
cross-origin check trusts.

`FlaskAuth` (bpart_auth.flask) does the security glue, so this file has routes and
templates only. On every request it refuses a state-changing request that the browser
says came from another origin (403: no forged POSTs, the sign-in form included), loads
the signed-in account into `g.account`, and ends the session when that account is gone,
disabled, or its credentials changed elsewhere. Every sign-in starts a fresh session
(nothing planted before survives it). Each redirect flow is kept in the session under
its own OAuth state, so several tabs each finish their own flow, and a flow begun in
another browser is refused. A refusal (`AuthError`) is flashed on the page the user was
on; an organization that must approve the app gets a page with the admin-consent URL.

Session cookies are Flask's signed cookies: `SameSite=Lax` (set by the adapter, so the
provider's redirect back carries them), `HttpOnly`, and `Secure` unless
`secure_cookies=False`. Behind a proxy, wrap the app in werkzeug's `ProxyFix`, so that
`request.remote_addr` (the sign-in throttle's client address) is the user's and
invitation links carry the public host.
"""

from flask import Flask, flash, g, redirect, render_template_string, request, url_for

from bpart_auth import AdminConsentRequired, Auth
from bpart_auth.flask import FlaskAuth, login_required

PROVIDER = "<any(google, microsoft):provider>"


def create_app(auth: Auth, *, secret_key: str, secure_cookies: bool = True) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key, SESSION_COOKIE_SECURE=secure_cookies)
    bpart = FlaskAuth(auth, app)  # login_url and home_url are "/", this app's one page

    def page(name, **context):
        return render_template_string(TEMPLATES["layout"] + TEMPLATES[name], **context)

    @app.errorhandler(AdminConsentRequired)  # other refusals: flashed where the user was
    def consent(error):
        return page("consent", error=error), 403

    @app.get("/")  # signed in: the account's page; otherwise the sign-in page
    def home():
        methods = g.account and auth.sign_in_methods(g.account.id)
        return page("home" if g.account else "login", methods=methods)

    @app.post("/login")
    def login():
        email, password = request.form["email"], request.form["password"]
        account = auth.sign_in_with_password(email, password, client_address=request.remote_addr)
        return bpart.sign_in(account, "You are signed in.")

    # The redirect flows, begun by a form and finished at the one callback URL.
    app.post(f"/login/{PROVIDER}")(bpart.sign_in_with)
    app.post(f"/link/{PROVIDER}")(bpart.link)  # SignInRequired when signed out
    app.post(f"/invite/<token>/{PROVIDER}")(bpart.accept_invite_with)
    app.get("/auth/callback")(bpart.complete)  # signed in, linked or registered
    app.post(f"/unlink/{PROVIDER}")(bpart.unlink)  # this session goes on, the others end
    app.post("/logout")(bpart.sign_out)

    @app.post("/invites")
    @login_required
    def invite_create():  # a real app emails the link; the example shows it
        invite, token = auth.invites.create(request.form["email"], invited_by=g.account.id)
        link = url_for("invite", token=token, _external=True)
        flash(f"Invitation for {invite.display_email}: {link}")
        return redirect("/")

    @app.get("/invite/<token>")
    def invite(token):
        return page("accept", invite=auth.invites.check(token), token=token)

    @app.post("/invite/<token>/password")
    def accept(token):
        password, name = request.form["password"], request.form.get("name", "")
        account = auth.invites.accept_with_password(token, password=password, name=name)
        return bpart.sign_in(account, "Welcome! Your account is ready.")

    return app


TEMPLATES = {
    "layout": """<!doctype html><title>Back office</title>
{% macro button(action, label) %}<form method="post" action="{{ action }}">
<button>{{ label }}</button></form>{% endmacro %}
{% for message in get_flashed_messages() %}<p class="flash">{{ message }}</p>{% endfor %}
""",
    "login": """<form method="post" action="/login">
<input name="email" type="email" placeholder="Email">
<input name="password" type="password" placeholder="Password"><button>Sign in</button></form>
{{ button("/login/google", "Sign in with Google") }}
{{ button("/login/microsoft", "Sign in with Microsoft") }}""",
    "home": """<p>Signed in as {{ g.account.display_email }}.
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
}


if __name__ == "__main__":  # configuration from the environment; a WSGI server in production
    import os

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
    create_app(auth, secret_key=env["FLASK_SECRET_KEY"]).run()
