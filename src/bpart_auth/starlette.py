"""Starlette (and FastAPI) adapter: the security glue of an async back office (extra `starlette`).

`StarletteAuth` wires an `AsyncAuth` into a Starlette or FastAPI app:

- a pure ASGI middleware, inside Starlette's `SessionMiddleware`, refuses a
  state-changing request a browser sent from another origin (403:
  `auth.sessions.cross_origin_refused`), and puts the session's account on
  `request.state.account` (None when signed out), ending the session when its account
  is gone, disabled, or its credentials changed elsewhere (with a notice saying so);
- `signed_in` (a FastAPI dependency; `SignedIn` is the annotated type) gives a route
  the signed-in account, or raises `SignInRequired`, which sends the browser to
  `login_url`;
- every `AuthError` a route lets through becomes a notice (category `"error"`, or
  `"info"` for news such as an admin-consent answer) and the browser goes back where
  the user was: the page its redirect flow began on, the same-origin page that posted
  the form, or else `home_url` / `login_url`; pass `on_error` to render some yourself;
- `sign_in_with`, `link`, `accept_invite_with` and `complete` run the redirect flows
  with the flow state kept in the session (several tabs each finish their own), and
  `sign_in` / `sign_out` start and end a session safely (a fresh session at every
  sign-in: no fixation).

Starlette has no flash messages: `flash(request, message)` keeps a notice in the
session and `notices(request)` takes them out for the next page. Every blocking call
runs through `AsyncAuth`, in worker threads, so the event loop never waits on the
store or a password hash. Sessions are Starlette's signed cookies (`SameSite=Lax` by
default, so the provider's redirect back carries them); pass `https_only=True` to
`SessionMiddleware` in production.

Examples:
    >>> from starlette.applications import Starlette
    >>> from starlette.middleware.sessions import SessionMiddleware
    >>> from starlette.testclient import TestClient
    >>> from bpart_auth import Auth, MemoryStore
    >>> from bpart_auth.starlette import StarletteAuth
    >>> app = Starlette()
    >>> bpart = StarletteAuth(Auth(MemoryStore(), redirect_uri="https://app.test/auth/callback"))
    >>> bpart.init_app(app)
    >>> app.add_middleware(SessionMiddleware, secret_key="a session key")  # after: outside
    >>> with TestClient(app, base_url="https://app.test") as client:
    ...     client.post("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code
    403
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, TypeAlias, cast

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from bpart_auth.aio import AsyncAuth
from bpart_auth.errors import AdminConsentAnswered, AuthError, ConfigurationError, SignInRequired
from bpart_auth.models import Account
from bpart_auth.services.sessions import ACCOUNT_KEY

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.types import ASGIApp, Receive, Scope, Send

    from bpart_auth.auth import Auth
    from bpart_auth.models import FlowStart, Outcome, ProviderName

__all__ = [
    "FORGED_REQUEST",
    "NOTICES_KEY",
    "SESSION_ENDED",
    "AuthMiddleware",
    "Notice",
    "StarletteAuth",
    "current_account",
    "flash",
    "notices",
    "signed_in",
]

SESSION_ENDED: Final = "Your session has ended. Please sign in again."
"""The notice (category `"error"`) left when the middleware ends a session."""
FORGED_REQUEST: Final = "This request did not come from this site."
"""The body of the 403 answer to a cross-origin state-changing request."""
NOTICES_KEY: Final = "bpart_auth.notices"
"""Where the session keeps the notices for the next page: `[[category, message], ...]`."""
MAX_NOTICES: Final = 5
"""Notices a session keeps at once; older ones are dropped (a cookie holds 4 KB)."""
_STATE_KEY: Final = "bpart_auth"  # request.state.bpart_auth: the StarletteAuth of the app

Category = Literal["success", "error", "info"]
ErrorRenderer = Callable[[Request, AuthError], "Response | Awaitable[Response | None] | None"]


@dataclasses.dataclass(frozen=True, slots=True)
class Notice:
    """A message for the next page the user sees: what `notices(request)` returns."""

    message: str
    category: str = "info"


def flash(request: Request, message: str, category: Category = "info") -> None:
    """Keep `message` in the session until the next `notices(request)` (Starlette has no flash)."""
    _add_notice(request.session, message, category)


def notices(request: Request) -> list[Notice]:
    """Take the session's notices out, oldest first; each is shown once.

    Examples:
        >>> from starlette.requests import Request
        >>> request = Request({"type": "http", "session": {}})
        >>> flash(request, "You are signed in.", "success")
        >>> notices(request), notices(request)
        ([Notice(message='You are signed in.', category='success')], [])
    """
    kept = request.session.pop(NOTICES_KEY, None)
    if not isinstance(kept, list):
        return []
    return [
        Notice(message=item[1], category=item[0])
        for item in kept
        if isinstance(item, list)
        and len(item) == 2  # noqa: PLR2004 - [category, message]
        and all(isinstance(part, str) for part in item)
    ]


def _add_notice(session: MutableMapping[str, Any], message: str, category: str) -> None:
    kept = session.get(NOTICES_KEY)
    kept = kept if isinstance(kept, list) else []
    # Assigned anew, never appended in place: the session notices the change.
    session[NOTICES_KEY] = [*kept, [category, message]][-MAX_NOTICES:]


class StarletteAuth:
    """bpart_auth in a Starlette or FastAPI app: `StarletteAuth(auth, app)`, then the session.

    Create it with the app (or call `init_app(app)` later), then add Starlette's
    `SessionMiddleware`, so that the session wraps the middleware.

    Every helper takes the request first; those that take a `provider` or a `token`
    find it in the request's path parameters when it is not given, so they serve as
    Starlette endpoints as they are (FastAPI too, through `app.add_route`):
    `app.add_route("/login/{provider}", bpart.sign_in_with, methods=["POST"])`. A path
    naming a provider the `Auth` does not have is a 404.

    Args:
        auth: The configured `AsyncAuth` (with `redirect_uri`, for the app's origin), or
            a sync `Auth`, which is wrapped in one (`self.auth`).
        app: The Starlette or FastAPI app; or call `init_app` later.
        login_url: Where `signed_in` sends a visitor who is not signed in, and where a
            refusal lands when no better page is known.
        home_url: Where `sign_in` and `complete` go when given no other page, and where
            a signed-in user's refusal lands when no better page is known.
        on_error: Renders an `AuthError` yourself: returns a response, or None to leave
            it to the default (a notice and a redirect, see `error_url`). May be async.
        second_factor_url: Where a sign-in goes when the account has a second factor.
        enrol_url: Where a sign-in goes when the policy requires a second factor the
            account lacks.

    Raises:
        ConfigurationError: The `Auth` has no `redirect_uri` (the app's origin, which the
            cross-origin check needs).
    """

    def __init__(
        self,
        auth: AsyncAuth | Auth,
        app: Starlette | None = None,
        *,
        login_url: str = "/",
        home_url: str = "/",
        on_error: ErrorRenderer | None = None,
        second_factor_url: str = "/second-factor",
        enrol_url: str = "/second-factor/enrol",
    ) -> None:
        self.auth = auth if isinstance(auth, AsyncAuth) else AsyncAuth(auth)
        self.auth.sessions.cross_origin_refused("GET", {})  # fails now, not per request
        self.login_url = login_url
        self.home_url = home_url
        self.second_factor_url = second_factor_url
        self.enrol_url = enrol_url
        self._on_error = on_error
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Starlette) -> None:
        """Add the middleware (`AuthMiddleware`) and the `AuthError` handler to `app`.

        Add Starlette's `SessionMiddleware` after this call: `add_middleware` wraps what
        is there, so the session is then outside and ready when the middleware runs.
        A handler the app adds for a subclass (say `AdminConsentRequired`) wins over
        this one for that subclass, as Starlette looks handlers up by the error's class.
        """
        app.add_middleware(AuthMiddleware, bpart=self)
        app.add_exception_handler(AuthError, self.refused)

    # The session

    async def sign_in(
        self,
        request: Request,
        account: Account,
        message: str | None = None,
        *,
        to: str | None = None,
    ) -> RedirectResponse:
        """Sign `account` in to a fresh session, leave `message`, redirect (303) to `to`.

        For a password sign-in or an invitation accepted with a password; redirect
        flows sign in through `complete`. When the account has a second factor (or
        must enrol one), the session holds the pending sign-in instead and the browser
        goes to `second_factor_url` (or `enrol_url`).
        """
        step = await self.auth.sessions.sign_in(request.session, account)
        if step != "signed_in":
            request.state.account = None
            return RedirectResponse(self._next_step_url(step), 303)
        request.state.account = account
        if message:
            flash(request, message, "success")
        return RedirectResponse(to or self.home_url, 303)

    def _next_step_url(self, step: str) -> str:
        return self.second_factor_url if step == "second_factor" else self.enrol_url

    async def sign_out(
        self, request: Request, message: str | None = None, *, to: str | None = None
    ) -> RedirectResponse:
        """End the session, leave `message`, redirect (303) to `to` (`login_url` by default)."""
        await self.auth.sessions.sign_out(request.session)
        request.state.account = None
        if message:
            flash(request, message, "success")
        return RedirectResponse(to or self.login_url, 303)

    async def refresh(self, request: Request, account: Account) -> None:
        """Keep this session signed in after the user's own change (unlink, new password)."""
        await self.auth.sessions.refresh(request.session, account)
        request.state.account = await self.auth.sessions.current(request.session)

    async def unlink(
        self,
        request: Request,
        provider: ProviderName | None = None,
        message: str | None = None,
        *,
        to: str | None = None,
    ) -> RedirectResponse:
        """Unlink `provider` from the signed-in account, leave `message`, redirect (303) to `to`.

        This session goes on (`refresh`); the account's other sessions end, as after
        any change of its credentials.

        Raises:
            SignInRequired: No account is signed in.
            LastSignInMethod: It is the account's only way to sign in.
        """
        account = await signed_in(request)
        await self.refresh(
            request, await self.auth.unlink(account.id, self._provider(request, provider))
        )
        if message:
            flash(request, message, "success")
        return RedirectResponse(to or self.home_url, 303)

    # Redirect flows

    async def sign_in_with(
        self,
        request: Request,
        provider: ProviderName | None = None,
        *,
        return_to: str | None = None,
    ) -> Response:
        """Redirect to `provider` to sign in; the flow is kept in the session."""
        start = await self.auth.begin_sign_in(
            self._provider(request, provider), session=request.session, return_to=return_to
        )
        return self.go(start)

    async def link(
        self,
        request: Request,
        provider: ProviderName | None = None,
        *,
        return_to: str | None = None,
    ) -> Response:
        """Redirect to `provider` to link it to the signed-in account.

        Raises:
            SignInRequired: No account is signed in.
        """
        start = await self.auth.begin_link(
            self._provider(request, provider), session=request.session, return_to=return_to
        )
        return self.go(start)

    async def accept_invite_with(
        self,
        request: Request,
        provider: ProviderName | None = None,
        token: str | None = None,
        *,
        return_to: str | None = None,
    ) -> Response:
        """Redirect to `provider` to accept the invitation of `token` by registering."""
        if token is None:
            token = str(request.path_params.get("token", ""))
        start = await self.auth.invites.begin_accept(
            self._provider(request, provider), token, session=request.session, return_to=return_to
        )
        return self.go(start)

    def go(self, start: FlowStart) -> Response:
        """The redirect (303) to a flow's provider (override to rewrite the URL)."""
        return RedirectResponse(start.url, 303)

    async def complete(self, request: Request, *, to: str | None = None) -> RedirectResponse:
        """Finish the flow of the callback request: leave what happened, redirect (303).

        The session is updated (`AsyncAuth.complete` with `session=`); the browser goes
        to the flow's `return_to`, else `to`, else `home_url`. Use `complete_outcome`
        to act on the outcome yourself.
        """
        outcome = await self.complete_outcome(request)
        if outcome.step != "signed_in":
            return RedirectResponse(self._next_step_url(outcome.step), 303)
        flash(request, outcome.message, "success")
        return RedirectResponse(outcome.return_to or to or self.home_url, 303)

    async def complete_outcome(self, request: Request) -> Outcome:
        """Finish the flow of the callback request; the session is updated."""
        outcome = await self.auth.complete(request.query_params, session=request.session)
        # Signed in (or still, after a link) unless a second step is pending: no re-read.
        request.state.account = outcome.account if outcome.step == "signed_in" else None
        return outcome

    def _provider(self, request: Request, given: ProviderName | None) -> ProviderName:
        """`given`, else the request's `{provider}` path parameter (404 when not configured)."""
        if given is not None:
            return given
        name = request.path_params.get("provider")
        if name not in self.auth.provider_names:
            raise HTTPException(404)
        return cast("ProviderName", name)

    # Per request

    def error_url(self, request: Request, error: AuthError) -> str:
        """Where a refusal is shown: where the user was.

        `login_url` for `SignInRequired`. Otherwise the page the redirect flow began on
        (its `return_to`); else, for a form, the page that posted it (the `Referer`,
        when it is this app's own origin); else `home_url` when signed in, `login_url`
        when not.
        """
        if isinstance(error, SignInRequired):
            return self.login_url
        if error.return_to:
            return error.return_to
        if request.method == "POST":
            page = self.auth.sessions.referring_page(request.headers.get("referer"))
            if page is not None:
                return page
        return self.home_url if current_account(request) else self.login_url

    async def refused(self, request: Request, exc: Exception) -> Response:
        """The app's `AuthError` handler (`init_app` installs it)."""
        error = cast("AuthError", exc)
        if self._on_error is not None:
            rendered = self._on_error(request, error)
            if inspect.isawaitable(rendered):
                rendered = await rendered
            if rendered is not None:
                return rendered
        category: Category = "info" if isinstance(error, AdminConsentAnswered) else "error"
        flash(request, error.message, category)
        return RedirectResponse(self.error_url(request, error), 303)

    async def guard(self, scope: Scope, receive: Receive, send: Send, app: ASGIApp) -> None:
        """Run one HTTP or WebSocket connection through the checks (`AuthMiddleware` does)."""
        if "session" not in scope:
            raise ConfigurationError(
                detail="StarletteAuth: add SessionMiddleware after init_app, so it wraps it"
            )
        if scope["type"] == "http" and self.auth.sessions.cross_origin_refused(
            scope["method"], Headers(scope=scope)
        ):
            await PlainTextResponse(FORGED_REQUEST, 403)(scope, receive, send)
            return
        session = scope["session"]
        account = None
        if ACCOUNT_KEY in session:  # no thread for a visitor who is not signed in
            account = await self.auth.sessions.current(session)
            if account is None:
                _add_notice(session, SESSION_ENDED, "error")
        state = scope.setdefault("state", {})
        state["account"] = account
        state[_STATE_KEY] = self
        await app(scope, receive, send)


class AuthMiddleware:
    """The pure ASGI middleware of `StarletteAuth` (`init_app` adds it).

    It must run inside a session middleware (`scope["session"]`): add
    `SessionMiddleware` after it. Lifespan events pass through untouched.
    """

    def __init__(self, app: ASGIApp, bpart: StarletteAuth) -> None:
        self.app = app
        self.bpart = bpart

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check an HTTP request or a WebSocket connection, then pass it on."""
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        await self.bpart.guard(scope, receive, send, self.app)


def current_account(request: Request) -> Account | None:
    """The signed-in account of this request (`request.state.account`), or None."""
    return cast("Account | None", request.scope.get("state", {}).get("account"))


async def signed_in(request: Request) -> Account:
    """The signed-in account; a FastAPI dependency (see `SignedIn`), or await it yourself.

    Raises:
        SignInRequired: No account is signed in: the app's handler sends the browser
            to `login_url` with the error's notice.
        ConfigurationError: `StarletteAuth.init_app` was not called.
    """
    state = request.scope.get("state", {})
    if _STATE_KEY not in state:
        raise ConfigurationError(detail="signed_in: StarletteAuth.init_app was not called")
    account = state.get("account")
    if account is None:
        raise SignInRequired
    return cast("Account", account)


try:
    from fastapi import Depends
except ImportError:  # Starlette alone: await `signed_in(request)` in the endpoint
    pass
else:
    SignedIn: TypeAlias = Annotated[Account, Depends(signed_in)]
    """A route parameter `me: SignedIn` is the signed-in account (FastAPI)."""
    __all__ += ["SignedIn"]
