"""A Flask back office signing in with bpart_auth: the whole wiring in one file.

`create_app(auth, secret_key=...)` takes an `Auth` built by the caller: the tests pass
one on `MemoryStore` with the fake providers; `python flask_example.py` builds one on
SQLStore with Google and Microsoft from environment variables (bottom of the file).

Sessions are Flask's signed cookies: `SameSite=Lax`, so the provider's redirect back to
`/auth/callback` carries them; `HttpOnly`; `Secure` unless `secure_cookies=False`. The
session holds the account id, when the session began (`since`), a CSRF token and, while
a redirect is under way, the sealed flow state. Flask has no CSRF protection of its
own, so every POST form carries the session's token and `guard` checks it. `guard` also
reloads the account on every request and ends the session when the account is gone,
disabled, or its credentials changed after the session began (a password reset or an
unlink elsewhere signs out every older session). The callback URL comes from
`url_for(..., _external=True)`: behind a proxy, wrap the app in werkzeug's `ProxyFix`,
or pin the URL you registered with the providers.
"""

import os
import secrets
from datetime import datetime

from flask import Flask, flash, g, redirect, render_template_string, request, session, url_for

from bpart_auth import AdminConsentRequired, Auth, AuthError

PUBLIC = {"login", "login_with", "callback", "invite", "accept"}  # all other pages need sign-in


def create_app(auth: Auth, *, secret_key: str, secure_cookies: bool = True) -> Flask:  # noqa: C901
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key, SESSION_COOKIE_SAMESITE="Lax")
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SECURE=secure_cookies)

    def page(name, **context):
        return render_template_string(TEMPLATES["layout"] + TEMPLATES[name], **context)

    def go(begin, *args, **kwargs):  # start a redirect flow: keep its sealed state, redirect
        start = begin(*args, redirect_uri=url_for("callback", _external=True), **kwargs)
        session["bpart_state"] = start.state
        return redirect(start.url)

    def sign_in(account, message, to="/"):
        session.clear()  # a new session: nothing from before survives a sign-in
        session.update(account_id=account.id, since=account.credentials_changed_at.isoformat())
        flash(message)
        return redirect(to)

    @app.before_request
    def guard():
        csrf = session.setdefault("csrf", secrets.token_urlsafe())
        sent = request.form.get("csrf", "").encode()
        if request.method == "POST" and not secrets.compare_digest(sent, csrf.encode()):
            return "Missing or wrong CSRF token.", 400
        since = session.get("since")  # None, or the credentials the session signed in with
        account = since and auth.session_account(
            session["account_id"], signed_in_at=datetime.fromisoformat(since)
        )
        if since and not account:  # gone, disabled, or its credentials changed since
            session.clear()
            flash("Your session has ended. Please sign in again.")
            account = None
        g.account = account
        return None if account or request.endpoint in PUBLIC else redirect("/login")

    @app.errorhandler(AdminConsentRequired)
    def blocked(error):
        return page("consent", message=str(error), url=error.consent_url), 403

    @app.errorhandler(AuthError)  # any other refusal: show its message, go back
    def refused(error):
        flash(str(error))
        token = request.view_args.get("token") if request.method == "POST" else None
        return redirect(f"/invite/{token}" if token else "/profile" if g.account else "/login")

    @app.route("/login", methods=["GET", "POST"])
    def login():
        if request.method == "GET":
            return page("login")
        email, password = request.form["email"], request.form["password"]
        account = auth.sign_in_with_password(email, password, client_address=request.remote_addr)
        return sign_in(account, "You are signed in.")

    @app.post("/login/<any(google, microsoft):provider>")
    def login_with(provider):
        return go(auth.begin_sign_in, provider)

    @app.get("/auth/callback")  # the one callback: sign-in, linking and invitations
    def callback():
        state, account_id = session.pop("bpart_state", ""), session.get("account_id")
        outcome = auth.complete(state=state, params=request.args, signed_in_account_id=account_id)
        return sign_in(outcome.account, outcome.message, outcome.return_to or "/")

    @app.get("/")
    def home():
        return page("home")

    @app.get("/profile")
    def profile():
        return page("profile", methods=auth.sign_in_methods(g.account.id))

    @app.post("/profile/link/<any(google, microsoft):provider>")
    def link(provider):
        return go(auth.begin_link, provider, account_id=g.account.id, return_to="/profile")

    @app.post("/profile/unlink/<any(google, microsoft):provider>")
    def unlink(provider):
        auth.unlink(g.account.id, provider)  # LastSignInMethod goes to `refused`
        # Unlinking stamped the credentials: keep this session, end the others.
        session["since"] = auth.get_account(g.account.id).credentials_changed_at.isoformat()
        return redirect("/profile")

    @app.post("/logout")
    def logout():
        session.clear()
        return redirect("/login")

    @app.post("/admin/invites")
    def invite_create():  # a real app emails the link; the example shows it
        invite, token = auth.invites.create(request.form["email"], invited_by=g.account.id)
        flash(f"Invitation for {invite.email}: {url_for('invite', token=token, _external=True)}")
        return redirect("/")

    @app.get("/invite/<token>")
    def invite(token):
        return page("accept", invite=auth.invites.check(token), token=token)

    @app.post("/invite/<token>/<any(password, google, microsoft):method>")
    def accept(token, method):
        if method != "password":
            return go(auth.invites.begin_accept, method, token)
        password, name = request.form["password"], request.form.get("name", "")
        account = auth.invites.accept_with_password(token, password=password, name=name)
        return sign_in(account, "Welcome! Your account is ready.")

    return app


TEMPLATES = {
    "layout": """<!doctype html><title>Back office</title>
{% macro button(action, label) %}<form method="post" action="{{ action }}">
<input type="hidden" name="csrf" value="{{ session.csrf }}"><button>{{ label }}</button></form>
{% endmacro %}
{% for message in get_flashed_messages() %}<p class="flash">{{ message }}</p>{% endfor %}
""",
    "login": """<form method="post" action="/login">
<input type="hidden" name="csrf" value="{{ session.csrf }}">
<input name="email" type="email" placeholder="Email">
<input name="password" type="password" placeholder="Password"><button>Sign in</button></form>
{{ button("/login/google", "Sign in with Google") }}
{{ button("/login/microsoft", "Sign in with Microsoft") }}""",
    "home": """<p>Signed in as {{ g.account.email }}. <a href="/profile">Profile</a></p>
<form method="post" action="/admin/invites">
<input type="hidden" name="csrf" value="{{ session.csrf }}">
<input name="email" type="email" placeholder="Email"><button>Invite a manager</button></form>
{{ button("/logout", "Sign out") }}""",
    "profile": """<p>{{ g.account.email }}. Password: {{ "yes" if methods.password else "no" }}.
<a href="/">Home</a></p>
{% for p in ["google", "microsoft"] %}{% if p in methods.providers %}
{{ button("/profile/unlink/" ~ p, "Unlink " ~ p|capitalize) }}{% else %}
{{ button("/profile/link/" ~ p, "Link " ~ p|capitalize) }}{% endif %}{% endfor %}""",
    "consent": """<h1>Your organization must approve this app</h1><p>{{ message }}</p>
<p>Send this link to your IT department: <a href="{{ url }}">{{ url }}</a></p>
<p><a href="/login">Back to sign-in</a></p>""",
    "accept": """<p>Invitation for {{ invite.email }}</p>
<form method="post" action="/invite/{{ token }}/password">
<input type="hidden" name="csrf" value="{{ session.csrf }}">
<input name="name" placeholder="Name">
<input name="password" type="password" placeholder="New password"><button>Accept</button></form>
{{ button("/invite/" ~ token ~ "/google", "Accept with Google") }}
{{ button("/invite/" ~ token ~ "/microsoft", "Accept with Microsoft") }}""",
}


if __name__ == "__main__":  # a deployment: configuration from the environment
    from bpart_auth import GoogleProvider, MicrosoftProvider, SQLStore

    env = os.environ
    google = GoogleProvider(client_id=env["GOOGLE_CLIENT_ID"], client_secret=env["GOOGLE_SECRET"])
    microsoft = MicrosoftProvider(
        client_id=env["MICROSOFT_ID"], client_secret=env["MICROSOFT_SECRET"]
    )
    store = SQLStore(env.get("DATABASE_URL", "sqlite:///bpart_auth.db"))
    auth = Auth(store, secret_key=env["BPART_AUTH_SECRET_KEY"], providers=[google, microsoft])
    create_app(auth, secret_key=env["FLASK_SECRET_KEY"]).run(port=int(env.get("PORT", "8000")))
