"""A Flask back office signing in with bpart_auth: the whole wiring in one file.

`create_app(auth, secret_key=...)` takes an `Auth` built by the caller: the tests pass
one on `MemoryStore` with the fake providers; `python flask_example.py` builds one on
SQLStore with Google and Microsoft from environment variables (bottom of the file). The
`Auth` has the app's callback URL, `redirect_uri=`, pinned in its configuration rather
than built from the request's `Host` header; every `begin_*` uses it.

Sessions are Flask's signed cookies: `SameSite=Lax`, so the provider's redirect back to
`/auth/callback` carries them; `HttpOnly`; `Secure` unless `secure_cookies=False`. The
session holds the account's stamp (`auth.sessions.stamp`: the account id and the version
of its credentials) and, while a redirect is under way, the sealed flow state. Every
sign-in starts a fresh session: `sign_in` clears the old one, so nothing planted in it
before survives (no fixation). `guard` reloads the account from its stamp on every
request and ends the session when the account is gone, disabled, or its credentials
changed since (a password reset, or an unlink elsewhere, signs out every older session).

Forged requests (CSRF): `guard` refuses any POST that the browser does not vouch for as
coming from this app's own origin (`auth.sessions.cross_origin_refused`). Browsers set
`Sec-Fetch-Site` (over HTTPS, since 2023) and `Origin` (on every POST, since 2020)
themselves, and no page can forge them. This replaces a hidden token in every form and
is at least as safe here: a POST from another site, or from a sibling subdomain
(`same-site`), is refused whether or not it carries a cookie, so the sign-in form is
covered too (login CSRF); a POST with neither header, from a script or a browser too old
to tell, is refused, so an old browser cannot post at all rather than post unprotected.
`SameSite=Lax` keeps the session cookie off cross-site POSTs as a second line.

The session keeps one flow state: a second tab's "Sign in with Google" replaces the
first tab's flow, which then ends with "Your sign-in took too long or was interrupted.
Please start again." Behind a proxy, wrap the app in werkzeug's `ProxyFix`, so that
`request.remote_addr` (the sign-in throttle's client address) is the user's and
invitation links carry the public host.
"""

import os

from flask import Flask, flash, g, redirect, render_template_string, request, session, url_for

from bpart_auth import AdminConsentRequired, Auth, AuthError

PUBLIC = {"home", "login", "login_with", "callback", "invite", "accept"}  # the rest: signed in


def create_app(auth: Auth, *, secret_key: str, secure_cookies: bool = True) -> Flask:  # noqa: C901
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key, SESSION_COOKIE_SAMESITE="Lax")
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SECURE=secure_cookies)

    def page(name, **context):
        return render_template_string(TEMPLATES["layout"] + TEMPLATES[name], **context)

    def go(start):  # a redirect flow: keep its sealed state, send the browser to the provider
        session["bpart_state"] = start.sealed_flow
        return redirect(start.url)

    def sign_in(account, message):
        session.clear()  # a fresh session: nothing from before survives a sign-in
        session["account"] = auth.sessions.stamp(account)
        flash(message)
        return redirect("/")

    @app.before_request
    def guard():
        if auth.sessions.cross_origin_refused(request.method, request.headers):
            return "This request did not come from this site.", 403
        g.account = auth.sessions.account(session.get("account"))
        if "account" in session and not g.account:  # gone, disabled, or credentials changed
            session.clear()
            flash("Your session has ended. Please sign in again.")
        return None if g.account or request.endpoint in PUBLIC else redirect("/")

    @app.errorhandler(AuthError)  # a refusal: show its message where the user was
    def refused(error):
        if isinstance(error, AdminConsentRequired):  # a page with the link for their IT
            return page("consent", error=error), 403
        flash(str(error))
        token = request.view_args.get("token") if request.method == "POST" else None
        return redirect(f"/invite/{token}" if token else "/")

    @app.get("/")  # signed in: the account's page; otherwise the sign-in page
    def home():
        if not g.account:
            return page("login")
        return page("home", methods=auth.sign_in_methods(g.account.id))

    @app.post("/login")
    def login():
        email, password = request.form["email"], request.form["password"]
        account = auth.sign_in_with_password(email, password, client_address=request.remote_addr)
        return sign_in(account, "You are signed in.")

    @app.post("/login/<any(google, microsoft):provider>")
    def login_with(provider):
        return go(auth.begin_sign_in(provider))

    @app.get("/auth/callback")  # the one callback: sign-in, linking and invitations
    def callback():
        state, account_id = session.pop("bpart_state", ""), g.account and g.account.id
        outcome = auth.complete(
            sealed_flow=state, params=request.args, signed_in_account_id=account_id
        )
        return sign_in(outcome.account, outcome.message)

    @app.post("/link/<any(google, microsoft):provider>")
    def link(provider):
        return go(auth.begin_link(provider, account_id=g.account.id))

    @app.post("/unlink/<any(google, microsoft):provider>")
    def unlink(provider):  # LastSignInMethod goes to `refused`
        # Unlinking changed the credentials: this session goes on, every other one ends.
        session["account"] = auth.sessions.stamp(auth.unlink(g.account.id, provider))
        return redirect("/")

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect("/")

    @app.post("/invites")
    def invite_create():  # a real app emails the link; the example shows it
        invite, token = auth.invites.create(request.form["email"], invited_by=g.account.id)
        link = url_for("invite", token=token, _external=True)
        flash(f"Invitation for {invite.display_email}: {link}")
        return redirect("/")

    @app.get("/invite/<token>")
    def invite(token):
        return page("accept", invite=auth.invites.check(token), token=token)

    @app.post("/invite/<token>/<any(password, google, microsoft):method>")
    def accept(token, method):
        if method != "password":
            return go(auth.invites.begin_accept(method, token))
        password, name = request.form["password"], request.form.get("name", "")
        account = auth.invites.accept_with_password(token, password=password, name=name)
        return sign_in(account, "Welcome! Your account is ready.")

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
