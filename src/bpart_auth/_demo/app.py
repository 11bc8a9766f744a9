"""The demo's back office: a Flask app on `bpart_auth.flask`, as an app would write it.

`FlaskAuth` does the security glue (the cross-origin guard, the session's account
re-checked on every request, `login_required`, errors flashed where the user was, the
redirect flows kept in the session); this module keeps the routes and the pages:
password sign-in, forgotten and changed passwords, Google and Microsoft, one callback
for sign-in, linking and invitations, the profile page, invitations (sent, resent,
revoked, accepted), second factors (an authenticator app, recovery codes and
passkeys on the profile; the second step after any first factor; a passwordless
sign-in with a passkey) and, in fake mode, the fake providers' own sign-in pages
(`bpart_auth._demo.fakes`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import (
    Flask,
    Response,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from markupsafe import Markup

from bpart_auth.errors import AdminConsentRequired, SignInRequired
from bpart_auth.flask import FlaskAuth, login_required

if TYPE_CHECKING:
    from werkzeug.wrappers import Response as BaseResponse

    from bpart_auth._demo.fakes import DemoFakes
    from bpart_auth.auth import Auth
    from bpart_auth.models import Account, FlowStart, ProviderName
    from bpart_auth.services.second_factors import Enrolled

_PROVIDER = "<any(google, microsoft):provider>"
_KINDS = {"totp": "Authenticator app", "passkey": "Passkey"}
# Where the demo shows the last invitation link it made (a real app emails it).
LAST_INVITE = "demo.last_invite"
NO_SECOND_STEP = "That sign-in has expired or is finished. Please sign in again."


class DemoAuth(FlaskAuth):
    """`FlaskAuth` for the demo: in fake mode, flows go to the fake providers' pages.

    Args:
        auth: The configured `Auth`.
        app: The Flask app.
        fakes: The fake providers, in fake mode.
    """

    def __init__(self, auth: Auth, app: Flask, *, fakes: DemoFakes | None) -> None:
        self.fakes = fakes
        super().__init__(auth, app, login_url="/login", home_url="/")

    def go(self, start: FlowStart) -> BaseResponse:
        """The fake providers' authorization URLs open the demo's own pages for them.

        A view that knows who is expected (the invited address, the signed-in user)
        puts it on `g.login_hint`; the fake pages prefill it, as real providers do
        with OpenID Connect's `login_hint`.
        """
        if self.fakes is None:
            return super().go(start)
        return redirect(self.fakes.browser_url(start.url, login_hint=g.get("login_hint")))


def create_app(
    auth: Auth,
    *,
    secret_key: str,
    fakes: DemoFakes | None = None,
    hint: str | None = None,
    base_url: str | None = None,
    passkeys: bool = False,
) -> Flask:
    """The back office on `auth`.

    Args:
        auth: The configured `Auth` (its providers are Google and Microsoft, real or fake).
        secret_key: Signs Flask's session cookie.
        fakes: In fake mode, the fake providers whose sign-in pages the app serves.
        hint: A line for the sign-in page (the seeded admin's email and password).
        base_url: Where the app is served (`http://localhost:8000`), the origin of
            `auth`'s `redirect_uri`. A request for another host (`127.0.0.1`) is
            redirected there first, so the session cookie the callback needs is the
            one the flow began with.
        passkeys: Offer passkeys (`auth`'s second-factor policy has a relying party).
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=False,  # the demo is served over http, on loopback only
    )
    if base_url is not None:  # before FlaskAuth's guard: the canonical host first
        app.before_request(lambda: _canonical_host(base_url))
    bpart = DemoAuth(auth, app, fakes=fakes)
    views = _Views(bpart, base_url)
    app.context_processor(
        lambda: {
            "hint": hint,
            "providers": auth.provider_names,
            "fake_mode": fakes is not None,
            "passkeys": passkeys,
        }
    )
    app.after_request(_headers)
    # The most specific handler wins: FlaskAuth flashes every other AuthError.
    app.register_error_handler(AdminConsentRequired, views.blocked)
    routes: list[tuple[str, str, Any, list[str]]] = [
        ("/login", "login", views.login, ["GET", "POST"]),
        (f"/login/{_PROVIDER}", "login_with", views.login_with, ["POST"]),
        ("/password/forgot", "forgot_password", views.forgot_password, ["GET", "POST"]),
        ("/password/reset/<token>", "reset_password", views.reset_password, ["GET", "POST"]),
        ("/auth/callback", "callback", views.callback, ["GET"]),
        ("/", "home", views.home, ["GET"]),
        ("/profile", "profile", views.profile, ["GET"]),
        ("/profile/password", "change_password", views.change_password, ["POST"]),
        (f"/profile/link/{_PROVIDER}", "link", views.link, ["POST"]),
        (f"/profile/unlink/{_PROVIDER}", "unlink", views.unlink, ["POST"]),
        ("/profile/factors/<factor_id>/remove", "remove_factor", views.remove_factor, ["POST"]),
        ("/profile/recovery-codes", "recovery_codes", views.recovery_codes, ["POST"]),
        ("/profile/passkeys/options", "passkey_options", views.passkey_options, ["POST"]),
        ("/profile/passkeys", "add_passkey", views.add_passkey, ["POST"]),
        ("/second-factor", "second_factor", views.second_factor, ["GET", "POST"]),
        ("/second-factor/enrol", "enrol_totp", views.enrol_totp, ["GET", "POST"]),
        ("/passkey/options", "sign_in_options", views.sign_in_options, ["POST"]),
        ("/passkey", "sign_in_with_passkey", views.sign_in_with_passkey, ["POST"]),
        ("/logout", "logout", views.logout, ["POST"]),
        ("/invites", "invite_create", views.invite_create, ["POST"]),
        ("/invites/<invite_id>/resend", "invite_resend", views.invite_resend, ["POST"]),
        ("/invites/<invite_id>/revoke", "invite_revoke", views.invite_revoke, ["POST"]),
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
    def __init__(self, bpart: DemoAuth, base_url: str | None) -> None:
        self.bpart = bpart
        self.auth = bpart.auth
        self.base_url = base_url

    def external(self, path: str) -> str:
        """An absolute URL for one of the app's paths (invitation and reset links)."""
        return f"{self.base_url or request.host_url.rstrip('/')}{path}"

    def blocked(self, error: AdminConsentRequired) -> tuple[str, int]:
        fakes = self.bpart.fakes
        url = fakes.browser_url(error.consent_url) if fakes else error.consent_url
        return render_template("consent.html", error=error, consent_url=url), 403

    # Signing in

    def login(self) -> str | BaseResponse:
        if request.method == "GET":
            return render_template("login.html")
        account = self.auth.passwords.sign_in(
            request.form.get("email", ""),
            request.form.get("password", ""),
            client_address=request.remote_addr,
        )
        message = f"Signed in as {account.display_email} with a password."
        return self.bpart.sign_in(account, message, to=url_for("home"))

    def login_with(self, provider: ProviderName) -> BaseResponse:
        # return_to: a refusal comes back to the sign-in page (a sign-in lands on home).
        return self.bpart.sign_in_with(provider, return_to=url_for("login"))

    def callback(self) -> BaseResponse:
        """The one callback: sign-in, linking and invitations all come back here.

        The flow's `return_to` is the page it began on: a refusal goes back there (the
        adapter's error hook) and so does a link; a sign-in or a registration lands
        on the home page.
        """
        outcome = self.bpart.complete_outcome()
        if outcome.step == "second_factor":  # the account has a second factor: ask for it
            return redirect(self.bpart.second_factor_url)
        if outcome.step == "enrol_second_factor":
            return redirect(self.bpart.enrol_url)
        flash(outcome.message, "success")
        back = outcome.return_to if outcome.kind == "linked" else None
        return redirect(back or url_for("home"))

    def logout(self) -> BaseResponse:
        return self.bpart.sign_out("You are signed out.")

    # Passwords

    def forgot_password(self) -> str:
        if request.method == "GET":
            return render_template("forgot.html", sent=False)
        email = request.form.get("email", "")
        token = self.auth.passwords.begin_reset(email)
        # A real app emails the link when there is a token, and shows this page either
        # way; the demo has no mail, so it shows the link (which tells that the address
        # has an account: fine for a demo, never for an app).
        link = None if token is None else self.external(url_for("reset_password", token=token))
        return render_template("forgot.html", sent=True, email=email, link=link)

    def reset_password(self, token: str) -> str | BaseResponse:
        if request.method == "GET":
            return render_template("reset.html", token=token)
        account = self.auth.passwords.complete_reset(
            token, new_password=request.form.get("password", "")
        )
        message = "Your new password is set, and you are signed in. Other sessions have ended."
        return self.bpart.sign_in(account, message, to=url_for("home"))

    @login_required
    def change_password(self) -> BaseResponse:
        account = self.auth.passwords.change(
            self._me().id,
            current=request.form.get("current", ""),
            new=request.form.get("new", ""),
        )
        self.bpart.refresh(account)  # this session goes on; every other one has ended
        flash("Your password is changed. Your other sessions have ended.", "success")
        return redirect(url_for("profile"))

    # Signed in

    @login_required
    def home(self) -> str:
        return render_template(
            "home.html", invites=self.auth.invites.pending(), last_invite=session.get(LAST_INVITE)
        )

    @login_required
    def profile(self) -> str:
        methods = self.auth.sign_in_methods(self._me().id)
        linked = {link.identity.provider: link for link in methods.identities}
        factors = self.auth.second_factors.list(self._me().id)
        return render_template(
            "profile.html",
            methods=methods,
            linked=linked,
            factors=factors,
            codes_left=self.auth.second_factors.recovery_codes_left(self._me().id),
        )

    @login_required
    def link(self, provider: ProviderName) -> BaseResponse:
        g.login_hint = self._me().email
        return self.bpart.link(provider, return_to=url_for("profile"))

    @login_required
    def unlink(self, provider: ProviderName) -> BaseResponse:
        self.bpart.refresh(self.auth.unlink(self._me().id, provider))
        name = provider.capitalize()
        flash(f"{name} is unlinked. You can no longer sign in with {name}.", "success")
        return redirect(url_for("profile"))

    # Second factors on the profile

    @login_required
    def remove_factor(self, factor_id: str) -> BaseResponse:
        factor = self.auth.second_factors.remove(session, factor_id)
        flash(f"{_KINDS[factor.kind]} \u201c{factor.name}\u201d is removed.", "success")
        return redirect(url_for("profile"))

    @login_required
    def recovery_codes(self) -> str:
        codes = self.auth.second_factors.regenerate_recovery_codes(session)
        flash("New recovery codes are made: the old ones no longer work.", "success")
        return render_template("recovery_codes.html", codes=codes, then=url_for("profile"))

    @login_required
    def passkey_options(self) -> Response:
        options = self.auth.second_factors.begin_passkey_registration(session)
        return Response(options, mimetype="application/json")

    @login_required
    def add_passkey(self) -> str | BaseResponse:
        enrolled = self.auth.second_factors.complete_passkey_registration(
            session,
            request.form.get("credential", ""),
            name=request.form.get("name", "") or "Passkey",
        )
        return self._added(f"Passkey \u201c{enrolled.factor.name}\u201d added.", enrolled)

    def enrol_totp(self) -> str | BaseResponse:
        """Add an authenticator app: signed in, or a sign-in pending enrolment.

        The adapter's `enrol_url` too: under `SecondFactorPolicy(required=True)` a
        first factor on an account without one lands here.
        """
        if request.method == "GET":
            enrolment = self.auth.second_factors.begin_totp(session)
            # The QR code is an SVG of segno's drawing our own otpauth URI: no script.
            return render_template(
                "enrol_totp.html",
                enrolment=enrolment,
                qr=Markup(enrolment.qr_svg),  # noqa: S704 - segno's SVG of our own URI
            )
        enrolled = self.auth.second_factors.confirm_totp(
            session,
            request.form.get("code", ""),
            name=request.form.get("name", "") or "Authenticator app",
        )
        return self._added(f"Authenticator app \u201c{enrolled.factor.name}\u201d added.", enrolled)

    # Signing in: the second step, and passkeys

    def second_factor(self) -> str | BaseResponse:
        """The second step: a code from the app, a recovery code, or a passkey."""
        if g.get("account") is not None:
            return redirect(url_for("home"))
        pending = self.auth.second_factors.pending(session)
        if pending is None or pending.step != "second_factor":
            # Straight to the sign-in page (a refused POST would come back here first).
            flash(NO_SECOND_STEP, "error")
            return redirect(url_for("login"))
        if request.method == "GET":
            return render_template("second_factor.html", pending=pending)
        account = self.auth.second_factors.verify(
            session, request.form.get("code", ""), client_address=request.remote_addr
        )
        g.account = account
        left = self.auth.second_factors.recovery_codes_left(account.id)
        if left < pending.recovery_codes:
            flash(
                f"Signed in as {account.display_email} with a recovery code. "
                f"{left} left: each works once.",
                "success",
            )
        else:
            flash(f"Signed in as {account.display_email} with your authenticator app.", "success")
        return redirect(url_for("home"))

    def sign_in_options(self) -> Response:
        """A passkey's challenge: the pending sign-in's second step, else passwordless."""
        options = self.auth.second_factors.begin_passkey(session)
        return Response(options, mimetype="application/json")

    def sign_in_with_passkey(self) -> BaseResponse:
        account = self.auth.second_factors.complete_passkey(
            session, request.form.get("credential", ""), client_address=request.remote_addr
        )
        g.account = account
        flash(f"Signed in as {account.display_email} with a passkey.", "success")
        return redirect(url_for("home"))

    # Invitations

    @login_required
    def invite_create(self) -> BaseResponse:
        email = request.form.get("email", "")
        invite, token = self.auth.invites.create(email, invited_by=self._me().id)
        self._show_invite_link(invite.display_email, token)
        flash(f"Invitation created for {invite.display_email}.", "success")
        return redirect(url_for("home"))

    @login_required
    def invite_resend(self, invite_id: str) -> BaseResponse:
        invite, token = self.auth.invites.resend(invite_id)
        self._show_invite_link(invite.display_email, token)
        flash(
            f"A new link for {invite.display_email} is ready; the old one no longer works.",
            "success",
        )
        return redirect(url_for("home"))

    @login_required
    def invite_revoke(self, invite_id: str) -> BaseResponse:
        invite = self.auth.invites.revoke(invite_id)
        if session.get(LAST_INVITE, {}).get("email") == invite.display_email:
            session.pop(LAST_INVITE)
        flash(f"The invitation for {invite.display_email} is revoked.", "success")
        return redirect(url_for("home"))

    def invite(self, token: str) -> str:
        return render_template("accept.html", invite=self.auth.invites.check(token), token=token)

    def accept(self, token: str, method: str) -> BaseResponse:
        if method != "password":
            g.login_hint = self.auth.invites.check(token).email
            return self.bpart.accept_invite_with(
                method, token, return_to=url_for("invite", token=token)
            )
        account = self.auth.invites.accept_with_password(
            token, password=request.form.get("password", ""), name=request.form.get("name", "")
        )
        return self.bpart.sign_in(account, "Welcome! Your account is ready.", to=url_for("home"))

    # Helpers of the views

    def _me(self) -> Account:
        """The signed-in account (`login_required` made sure there is one)."""
        account = self.bpart.current_account()
        if account is None:  # login_required ran first: this does not happen
            raise SignInRequired
        return account

    def _added(self, message: str, enrolled: Enrolled) -> str | BaseResponse:
        """After a factor is added: its recovery codes once (the first factor), else the profile."""
        g.account = self.auth.sessions.current(session)
        flash(message, "success")
        then = url_for("profile") if not enrolled.signed_in else url_for("home")
        if enrolled.recovery_codes:
            # Shown once, in this answer only (never kept in the session): the page
            # says to keep them before going on.
            return render_template("recovery_codes.html", codes=enrolled.recovery_codes, then=then)
        return redirect(then)

    def _show_invite_link(self, email: str, token: str) -> None:
        link = self.external(url_for("invite", token=token))
        session[LAST_INVITE] = {"email": email, "link": link}


def _canonical_host(base_url: str) -> BaseResponse | None:
    """A request for another host (`127.0.0.1`) goes to `base_url`'s first."""
    if request.host_url.rstrip("/") != base_url:
        return redirect(f"{base_url}{request.full_path.rstrip('?')}")
    return None


def _headers(response: Response) -> BaseResponse:
    """Pages with sessions, tokens and links are never cached nor framed.

    `Referrer-Policy: same-origin`: the adapter sends a form's refusal back to the
    page that posted it, which it learns from the `Referer` of a same-origin POST;
    no other site gets a `Referer` at all, so the invitation and reset tokens in our
    URLs never leave the site (`strict-origin-when-cross-origin` would send other
    sites our origin, which they do not need).
    """
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    return response
