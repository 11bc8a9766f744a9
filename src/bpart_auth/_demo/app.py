"""The demo's back office: a Flask app wired to `Auth` the way an app would be.

It is examples/flask/flask_example.py grown into something to click through: the same
routes (password sign-in, Google and Microsoft, one callback for sign-in, linking and
invitations, the profile page, invitations), plus pages that say what happened and, in
fake mode, the fake providers' own sign-in pages (`bpart_auth._demo.fakes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from flask import Flask, flash, g, redirect, render_template, request, session, url_for

from bpart_auth.errors import AdminConsentRequired, AuthError

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from bpart_auth._demo.fakes import DemoFakes
    from bpart_auth.auth import Auth
    from bpart_auth.models import Account, FlowStart, ProviderName

# Pages a visitor reaches without signing in; every other page needs a session.
PUBLIC = frozenset({"login", "login_with", "callback", "invite", "accept", "static"})
# What the session holds: the account's stamp (`auth.sessions.stamp`) and, while a
# redirect is under way, the sealed flow state.
ACCOUNT, FLOW = "account", "bpart_flow"
_PROVIDER = "<any(google, microsoft):provider>"


def create_app(
    auth: Auth,
    *,
    secret_key: str,
    fakes: DemoFakes | None = None,
    hint: str | None = None,
    base_url: str | None = None,
) -> Flask:
    """The back office on `auth`.

    Args:
        auth: The configured `Auth` (its providers are Google and Microsoft, real or fake).
        secret_key: Signs Flask's session cookie.
        fakes: In fake mode, the fake providers whose sign-in pages the app serves.
        hint: A line for the sign-in page (the seeded admin's email and password).
        base_url: Where the app is served (`http://127.0.0.1:8000`), the origin of
            `auth`'s `redirect_uri`. A request for another host (`localhost`) is
            redirected there first, so the session cookie the callback needs is the
            one the flow began with.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=False,  # the demo is served over http, on loopback only
    )
    views = _Views(auth, fakes, base_url)
    app.context_processor(
        lambda: {"hint": hint, "providers": auth.provider_names, "fake_mode": fakes is not None}
    )
    app.before_request(views.guard)
    app.after_request(_no_store)
    app.register_error_handler(AdminConsentRequired, views.blocked)
    app.register_error_handler(AuthError, views.refused)
    routes: list[tuple[str, str, Any, list[str]]] = [
        ("/login", "login", views.login, ["GET", "POST"]),
        (f"/login/{_PROVIDER}", "login_with", views.login_with, ["POST"]),
        ("/auth/callback", "callback", views.callback, ["GET"]),
        ("/", "home", views.home, ["GET"]),
        ("/profile", "profile", views.profile, ["GET"]),
        (f"/profile/link/{_PROVIDER}", "link", views.link, ["POST"]),
        (f"/profile/unlink/{_PROVIDER}", "unlink", views.unlink, ["POST"]),
        ("/logout", "logout", views.logout, ["POST"]),
        ("/invites", "invite_create", views.invite_create, ["POST"]),
        ("/invite/<token>", "invite", views.invite, ["GET"]),
        (
            "/invite/<token>/<any(password, google, microsoft):method>",
            "accept",
            views.accept,
            ["POST"],
        ),
    ]
    for rule, endpoint, view, methods in routes:
        app.add_url_rule(rule, endpoint, view, methods=methods)
    if fakes is not None:
        app.register_blueprint(fakes.blueprint(), url_prefix="/fake")
    return app


class _Views:
    def __init__(self, auth: Auth, fakes: DemoFakes | None, base_url: str | None) -> None:
        self.auth = auth
        self.fakes = fakes
        self.base_url = base_url

    # Wiring shared by the views

    def external(self, path: str) -> str:
        """An absolute URL for one of the app's paths (the callback, invitation links)."""
        return f"{self.base_url or request.host_url.rstrip('/')}{path}"

    def go(self, start: FlowStart) -> Response:
        """Keep the sealed flow state in the session; send the browser to the provider."""
        session[FLOW] = start.sealed_flow
        return redirect(self.fakes.browser_url(start.url) if self.fakes else start.url)

    def sign_in(self, account: Account, message: str, to: str = "/") -> Response:
        session.clear()  # a fresh session on every sign-in: no fixation
        session[ACCOUNT] = self.auth.sessions.stamp(account)
        flash(message, "success")
        return redirect(to)

    def guard(self) -> Response | tuple[str, int] | None:
        """Canonical host, forged POSTs refused, and the session's account re-checked."""
        if self.base_url is not None and request.host_url.rstrip("/") != self.base_url:
            return redirect(f"{self.base_url}{request.full_path.rstrip('?')}")
        if self.auth.sessions.cross_origin_refused(request.method, request.headers):
            return "This request did not come from this site.", 403
        g.account = self.auth.sessions.account(session.get(ACCOUNT))
        if ACCOUNT in session and g.account is None:  # gone, disabled, credentials changed
            session.clear()
            flash("Your session has ended. Please sign in again.", "error")
        if g.account is None and request.endpoint not in PUBLIC | {None} and not _fake_page():
            return redirect(url_for("login"))
        return None

    def blocked(self, error: AdminConsentRequired) -> tuple[str, int]:
        url = self.fakes.browser_url(error.consent_url) if self.fakes else error.consent_url
        return render_template("consent.html", error=error, consent_url=url), 403

    def refused(self, error: AuthError) -> Response:
        """Any other refusal: show its message where the user came from."""
        flash(str(error), "error")
        token = (request.view_args or {}).get("token")
        if token and request.method == "POST":  # accepting failed: back to the invitation
            return redirect(url_for("invite", token=token))
        return redirect(url_for("profile" if g.get("account") else "login"))

    # Signing in

    def login(self) -> str | Response:
        if request.method == "GET":
            return render_template("login.html")
        account = self.auth.sign_in_with_password(
            request.form.get("email", ""),
            request.form.get("password", ""),
            client_address=request.remote_addr,
        )
        return self.sign_in(account, f"Signed in as {account.display_email} with a password.")

    def login_with(self, provider: ProviderName) -> Response:
        return self.go(self.auth.begin_sign_in(provider))

    def callback(self) -> Response:
        """The one callback: sign-in, linking and invitations all come back here."""
        outcome = self.auth.complete(
            sealed_flow=session.pop(FLOW, ""),
            params=request.args,
            signed_in_account_id=g.account.id if g.account else None,
        )
        return self.sign_in(outcome.account, outcome.message, outcome.return_to or "/")

    def logout(self) -> Response:
        session.clear()
        flash("You are signed out.", "success")
        return redirect(url_for("login"))

    # Signed in

    def home(self) -> str:
        return render_template("home.html", invites=self.auth.invites.pending())

    def profile(self) -> str:
        methods = self.auth.sign_in_methods(g.account.id)
        return render_template("profile.html", methods=methods)

    def link(self, provider: ProviderName) -> Response:
        return self.go(
            self.auth.begin_link(provider, account_id=g.account.id, return_to="/profile")
        )

    def unlink(self, provider: ProviderName) -> Response:
        # Unlinking changed the credentials: this session goes on, every other one ends.
        session[ACCOUNT] = self.auth.sessions.stamp(self.auth.unlink(g.account.id, provider))
        name = provider.capitalize()
        flash(f"{name} is unlinked. You can no longer sign in with {name}.", "success")
        return redirect(url_for("profile"))

    # Invitations

    def invite_create(self) -> Response:
        email = request.form.get("email", "")
        invite, token = self.auth.invites.create(email, invited_by=g.account.id)
        link = self.external(url_for("invite", token=token))
        session["last_invite"] = {"email": invite.display_email, "link": link}
        flash(f"Invitation created for {invite.display_email}.", "success")
        return redirect(url_for("home"))

    def invite(self, token: str) -> str:
        return render_template("accept.html", invite=self.auth.invites.check(token), token=token)

    def accept(self, token: str, method: str) -> Response:
        if method != "password":
            provider = cast("ProviderName", method)
            return self.go(self.auth.invites.begin_accept(provider, token))
        account = self.auth.invites.accept_with_password(
            token, password=request.form.get("password", ""), name=request.form.get("name", "")
        )
        return self.sign_in(account, "Welcome! Your account is ready.")


def _fake_page() -> bool:
    """The fake providers' pages stand for another site: no sign-in needed."""
    return (request.blueprint or "") == "fake"


def _no_store(response: Response) -> Response:
    """Pages with sessions, tokens and links are never cached nor leak their URL."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # invitation tokens are in URLs
    response.headers["X-Frame-Options"] = "DENY"
    return response
