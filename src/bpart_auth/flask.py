"""Flask adapter: the security glue of a Flask back office, written once (extra `flask`).

`FlaskAuth` wires an `Auth` into a Flask app, as Flask-Login's `LoginManager` does:

- before every request, it refuses a state-changing request a browser sent from
  another origin (403: `auth.sessions.cross_origin_refused`), and puts the session's
  account on `g.account` (None when signed out), ending the session when its account
  is gone, disabled, or its credentials changed elsewhere;
- `login_required` sends a visitor who is not signed in to `login_url`;
- every `AuthError` a view lets through is flashed (category `"error"`, or `"info"`
  for news such as an admin-consent answer) and the browser goes back where the user
  was: the page its redirect flow began on, the same-origin page that posted the
  form, or else `home_url` / `login_url`; pass `on_error` to render errors yourself;
- `sign_in_with`, `link`, `accept_invite_with` and `complete` run the redirect flows
  with the flow state kept in Flask's session (several tabs each finish their own),
  `sign_in` / `sign_out` start and end a session safely (a fresh session at every
  sign-in: no fixation), and `unlink` keeps the session that unlinked signed in.

The app keeps its routes, templates and the `Auth` configuration. The helpers take
what a route passes them, so one can be a whole view:
`app.post("/login/<provider>")(bpart.sign_in_with)`. Session cookies get
`SameSite=Lax` unless the app set a value; set `SESSION_COOKIE_SECURE = True` in
production (HTTPS).

Examples:
    >>> from flask import Flask
    >>> from bpart_auth import Auth, MemoryStore
    >>> from bpart_auth.flask import FlaskAuth
    >>> app = Flask("backoffice")
    >>> app.secret_key = "a Flask secret key"
    >>> bpart = FlaskAuth(Auth(MemoryStore(), redirect_uri="https://app.test/auth/callback"), app)
    >>> with app.test_client() as client:
    ...     client.post("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code
    403
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar, cast

from flask import Flask, Response, current_app, flash, g, redirect, request, session

from bpart_auth.errors import (
    AdminConsentAnswered,
    AuthError,
    ConfigurationError,
    SignInRequired,
)
from bpart_auth.services.sessions import ACCOUNT_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

    from flask.typing import ResponseReturnValue
    from werkzeug.wrappers import Response as BaseResponse

    from bpart_auth.auth import Auth
    from bpart_auth.models import Account, FlowStart, Outcome, ProviderName

__all__ = ["FORGED_REQUEST", "SESSION_ENDED", "FlaskAuth", "login_required"]

SESSION_ENDED: Final = "Your session has ended. Please sign in again."
"""Flashed (category `"error"`) when the guard ends a session."""
FORGED_REQUEST: Final = "This request did not come from this site."
"""The body of the 403 answer to a cross-origin state-changing request."""
_EXTENSION: Final = "bpart_auth"

_P = ParamSpec("_P")
_R = TypeVar("_R")


class FlaskAuth:
    """bpart_auth in a Flask app: create it with the `Auth`, then `init_app(app)`.

    Args:
        auth: The configured `Auth` (with `redirect_uri`, for the app's origin).
        app: The Flask app; or call `init_app` later (application factories).
        login_url: Where `login_required` sends a visitor who is not signed in, and
            where a refusal lands when no better page is known.
        home_url: Where `sign_in` and `complete` go when given no other page, and
            where a signed-in user's refusal lands when no better page is known.
        on_error: Renders an `AuthError` yourself (returns a response); by default
            it is flashed and the browser sent back (see `error_url`).
        second_factor_url: Where a sign-in goes when the account has a second factor
            (the app's page that calls `auth.second_factors.verify`).
        enrol_url: Where a sign-in goes when the policy requires a second factor the
            account lacks (the app's enrolment page).
    """

    def __init__(
        self,
        auth: Auth,
        app: Flask | None = None,
        *,
        login_url: str = "/",
        home_url: str = "/",
        on_error: Callable[[AuthError], ResponseReturnValue] | None = None,
        second_factor_url: str = "/second-factor",
        enrol_url: str = "/second-factor/enrol",
    ) -> None:
        self.auth = auth
        self.login_url = login_url
        self.home_url = home_url
        self.second_factor_url = second_factor_url
        self.enrol_url = enrol_url
        self._on_error = on_error
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install the guard and the error handler on `app`.

        Raises:
            ConfigurationError: The `Auth` has no `redirect_uri` (the app's origin,
                which the cross-origin check needs).
        """
        self.auth.sessions.cross_origin_refused("GET", {})  # fails now, not per request
        app.extensions[_EXTENSION] = self
        if app.config.get("SESSION_COOKIE_SAMESITE") is None:
            app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
        app.before_request(self._guard)
        app.register_error_handler(AuthError, self._refused)

    # The session

    def sign_in(
        self, account: Account, message: str | None = None, *, to: str | None = None
    ) -> BaseResponse:
        """Sign `account` in to a fresh session, flash `message`, redirect to `to`.

        For a password sign-in or an invitation accepted with a password; redirect
        flows sign in through `complete`. When the account has a second factor (or
        must enrol one), the session holds the pending sign-in instead and the browser
        goes to `second_factor_url` (or `enrol_url`), and `message` is not shown: the
        second-step page says what comes next.
        """
        step = self.auth.sessions.sign_in(session, account)
        if step != "signed_in":
            g.account = None
            return redirect(self._next_step_url(step))
        g.account = account
        if message:
            flash(message, "success")
        return redirect(to or self.home_url)

    def _next_step_url(self, step: str) -> str:
        return self.second_factor_url if step == "second_factor" else self.enrol_url

    def sign_out(self, message: str | None = None, *, to: str | None = None) -> BaseResponse:
        """End the session, flash `message`, redirect to `to` (`login_url` by default)."""
        self.auth.sessions.sign_out(session)
        g.account = None
        if message:
            flash(message, "success")
        return redirect(to or self.login_url)

    def unlink(
        self, provider: ProviderName, message: str | None = None, *, to: str | None = None
    ) -> BaseResponse:
        """Unlink `provider` from the signed-in account, flash `message`, redirect to `to`.

        This session goes on (`refresh`); the account's other sessions end, as after
        any change of its credentials.

        Raises:
            SignInRequired: No account is signed in.
            LastSignInMethod: It is the account's only way to sign in.
        """
        account = self.current_account()
        if account is None:
            raise SignInRequired
        self.refresh(self.auth.unlink(account.id, provider))
        if message:
            flash(message, "success")
        return redirect(to or self.home_url)

    def refresh(self, account: Account) -> None:
        """Keep this session signed in after the user's own change (unlink, new password)."""
        self.auth.sessions.refresh(session, account)
        g.account = self.auth.sessions.current(session)

    # Redirect flows

    def sign_in_with(self, provider: ProviderName, *, return_to: str | None = None) -> BaseResponse:
        """Redirect to `provider` to sign in; the flow is kept in the session."""
        return self.go(self.auth.begin_sign_in(provider, session=session, return_to=return_to))

    def link(self, provider: ProviderName, *, return_to: str | None = None) -> BaseResponse:
        """Redirect to `provider` to link it to the signed-in account.

        Raises:
            SignInRequired: No account is signed in.
        """
        return self.go(self.auth.begin_link(provider, session=session, return_to=return_to))

    def accept_invite_with(
        self, provider: ProviderName, token: str, *, return_to: str | None = None
    ) -> BaseResponse:
        """Redirect to `provider` to accept the invitation of `token` by registering."""
        start = self.auth.invites.begin_accept(
            provider, token, session=session, return_to=return_to
        )
        return self.go(start)

    def go(self, start: FlowStart) -> BaseResponse:
        """The redirect to a flow's provider (override to rewrite the URL)."""
        return redirect(start.url)

    def complete(self, *, to: str | None = None) -> BaseResponse:
        """Finish the flow of the callback request: flash what happened and redirect.

        The session is updated (`Auth.complete` with `session=`); the browser goes to
        the flow's `return_to`, else `to`, else `home_url`. Use `complete_outcome`
        to act on the outcome yourself.
        """
        outcome = self.complete_outcome()
        if outcome.step != "signed_in":
            return redirect(self._next_step_url(outcome.step))
        flash(outcome.message, "success")
        return redirect(outcome.return_to or to or self.home_url)

    def complete_outcome(self) -> Outcome:
        """Finish the flow of the callback request; the session is updated."""
        outcome = self.auth.complete(request.args, session=session)
        # Signed in (or still, after a link) unless a second step is pending: no re-read.
        g.account = outcome.account if outcome.step == "signed_in" else None
        return outcome

    # Per request

    @staticmethod
    def current_account() -> Account | None:
        """The signed-in account of this request (`g.account`), or None."""
        return cast("Account | None", g.get("account"))

    def error_url(self, error: AuthError) -> str:
        """Where a refusal is shown: where the user was.

        The page the redirect flow began on (its `return_to`); else, for a form, the
        page that posted it (the `Referer`, when it is this app's own origin); else
        `home_url` when signed in, `login_url` when not.
        """
        if error.return_to:
            return error.return_to
        if request.method == "POST":
            page = self.auth.sessions.referring_page(request.referrer)
            if page is not None:
                return page
        return self.home_url if self.current_account() else self.login_url

    def _guard(self) -> ResponseReturnValue | None:
        if self.auth.sessions.cross_origin_refused(request.method, request.headers):
            return Response(FORGED_REQUEST, 403, mimetype="text/plain")
        had_account = ACCOUNT_KEY in session
        g.account = self.auth.sessions.current(session)
        if had_account and g.account is None:
            flash(SESSION_ENDED, "error")
        return None

    def _refused(self, error: AuthError) -> ResponseReturnValue:
        if self._on_error is not None:
            return self._on_error(error)
        flash(error.message, "info" if isinstance(error, AdminConsentAnswered) else "error")
        return redirect(self.error_url(error))


def login_required(view: Callable[_P, _R]) -> Callable[_P, _R | BaseResponse]:
    """Send a visitor who is not signed in to the app's `FlaskAuth.login_url`.

    Examples:
        >>> from bpart_auth.flask import login_required
        >>> @login_required
        ... def profile():
        ...     return "only for the signed in"
    """

    @functools.wraps(view)
    def signed_in_only(*args: _P.args, **kwargs: _P.kwargs) -> _R | BaseResponse:
        if g.get("account") is None:
            extension = current_app.extensions.get(_EXTENSION)
            if not isinstance(extension, FlaskAuth):
                raise ConfigurationError(detail="login_required: FlaskAuth.init_app was not called")
            return redirect(extension.login_url)
        return view(*args, **kwargs)

    return signed_in_only
