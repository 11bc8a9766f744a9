"""Django adapter: the security glue of a Django back office, written once (extra `django`).

Configure it with one setting and one middleware, after Django's own session, CSRF and
messages middleware (which stay on: every POST form keeps its `{% csrf_token %}`):

```python
BPART_AUTH = "backoffice.accounts.auth"  # the app's `Auth`: a dotted path, or the object
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "bpart_auth.django.AuthMiddleware",
]
LOGIN_URL = "/login"  # Django's own settings, read as Django's views read them
LOGIN_REDIRECT_URL = "/"
```

- `AuthMiddleware` puts the session's account on `request.account` (None when signed
  out), ending the session when its account is gone, disabled, or its credentials
  changed elsewhere (with a `SESSION_ENDED` message when `django.contrib.messages` is
  on). It turns every `AuthError` a view lets through into a message (level ERROR, or
  INFO for news such as an admin-consent answer) and a redirect back where the user
  was: the page the redirect flow began on, the same-origin page that posted the
  form, or else `LOGIN_REDIRECT_URL` / `LOGIN_URL`. Subclass it and override
  `refused` to render errors yourself.
- `login_required` sends a visitor who is not signed in to `LOGIN_URL`.
- `sign_in_with`, `link`, `accept_invite_with` and `complete` run the redirect flows
  with the flow state kept in Django's session (several tabs each finish their own);
  `sign_in` and `sign_out` start and end a session safely: every sign-in gets a fresh
  session under a new key (nothing planted before survives) and a new CSRF token;
  `unlink` keeps the session that unlinked signed in. When the account has a second
  factor, `sign_in` and `complete` send the browser to the second step instead
  (settings `BPART_AUTH_SECOND_FACTOR_URL`, `BPART_AUTH_ENROL_URL`); once
  `auth.second_factors` signed the session in there, `finish_sign_in` gives it its new
  CSRF token. These take the request first and the URL's arguments by name, so they
  serve as views themselves:
  `path("login/<provider>", require_POST(bpart_auth.django.sign_in_with))`.

Forged requests: Django's `CsrfViewMiddleware` answers them (403), login CSRF
included. `CrossOriginMiddleware` adds the Fetch Metadata check of
`auth.sessions.cross_origin_refused` as a second line, for apps that want it; it
refuses POSTs without browser headers, so an app's test client must send
`Sec-Fetch-Site`.

Examples:
    >>> from bpart_auth.django import login_required
    >>> @login_required
    ... def profile(request):
    ...     return f"only for {request.account.email}"
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Concatenate, Final, ParamSpec, TypeVar

from django import conf
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.csrf import rotate_token
from django.shortcuts import resolve_url
from django.utils.module_loading import import_string

from bpart_auth.auth import Auth
from bpart_auth.errors import (
    AdminConsentAnswered,
    AuthError,
    ConfigurationError,
    SignInRequired,
)
from bpart_auth.services.sessions import ACCOUNT_KEY

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.http import HttpRequest

    from bpart_auth.models import Account, FlowStart, Outcome, ProviderName

__all__ = [
    "FORGED_REQUEST",
    "SESSION_ENDED",
    "AuthMiddleware",
    "CrossOriginMiddleware",
    "accept_invite_with",
    "complete",
    "complete_outcome",
    "finish_sign_in",
    "get_auth",
    "link",
    "login_required",
    "refresh",
    "sign_in",
    "sign_in_with",
    "sign_out",
    "unlink",
]

SESSION_ENDED: Final = "Your session has ended. Please sign in again."
"""The message (level ERROR) when the middleware ends a session."""
FORGED_REQUEST: Final = "This request did not come from this site."
"""The body of `CrossOriginMiddleware`'s 403 answer."""
_SETTING: Final = "BPART_AUTH"
_SESSIONS: Final = "django.contrib.sessions.middleware.SessionMiddleware"
_CSRF: Final = "django.middleware.csrf.CsrfViewMiddleware"
_MESSAGES: Final = "django.contrib.messages.middleware.MessageMiddleware"

_P = ParamSpec("_P")
_R = TypeVar("_R")


def get_auth() -> Auth:
    """The app's `Auth`: `settings.BPART_AUTH`, an `Auth` or the dotted path of one.

    Raises:
        ConfigurationError: The setting is missing or names no `Auth`.
    """
    try:
        value = getattr(conf.settings, _SETTING, None)
    except ImproperlyConfigured as exc:  # Django's settings are not configured at all
        raise ConfigurationError(detail=f"settings.{_SETTING}: {exc}") from exc
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ConfigurationError(detail=f"settings.{_SETTING} = {value!r}: {exc}") from exc
    if not isinstance(value, Auth):
        raise ConfigurationError(
            detail=f"settings.{_SETTING} must be an Auth or its dotted path, not {value!r}"
        )
    return value


# The session


def sign_in(
    request: HttpRequest, account: Account, message: str | None = None, *, to: str | None = None
) -> HttpResponseRedirect:
    """Sign `account` in to a fresh session, add `message`, redirect to `to`.

    For a password sign-in or an invitation accepted with a password (redirect flows
    sign in through `complete`). The session is cleared and gets a new key, and the
    CSRF token a new value, as `django.contrib.auth.login` does. `to` defaults to
    `settings.LOGIN_REDIRECT_URL`. When the account has a second factor (or must
    enrol one), the session holds the pending sign-in instead, and the browser goes
    to `settings.BPART_AUTH_SECOND_FACTOR_URL` (or `BPART_AUTH_ENROL_URL`).

    Raises:
        AccountDisabled: The account is disabled.
    """
    step = get_auth().sessions.sign_in(request.session, account)
    rotate_token(request)
    if step != "signed_in":
        request.account = None
        return HttpResponseRedirect(resolve_url(_next_step_url(step)))
    _signed_in(request, account)
    _say(request, messages.SUCCESS, message)
    return HttpResponseRedirect(resolve_url(to or conf.settings.LOGIN_REDIRECT_URL))


def finish_sign_in(request: HttpRequest) -> Account:
    """After the second step signed the session in: a new CSRF token, `request.account`.

    Call it when `auth.second_factors` signed the account in: `verify`,
    `complete_passkey`, or an enrolment that finished a pending sign-in
    (`Enrolled.signed_in`). The service gave the session a new key; this gives the
    CSRF token a new value, as `sign_in` does, and returns the account.

    Raises:
        SignInRequired: The session is not signed in.
    """
    account = get_auth().sessions.current(request.session)
    if account is None:
        raise SignInRequired
    _signed_in(request, account)
    return account


def _next_step_url(step: str) -> str:
    """Where a pending second step, or enrolment, is done (settings, or the defaults)."""
    if step == "second_factor":
        return str(getattr(conf.settings, "BPART_AUTH_SECOND_FACTOR_URL", "/second-factor"))
    return str(getattr(conf.settings, "BPART_AUTH_ENROL_URL", "/second-factor/enrol"))


def sign_out(
    request: HttpRequest, message: str | None = None, *, to: str | None = None
) -> HttpResponseRedirect:
    """End the session (flushed: a new key, its data deleted), add `message`, redirect.

    `to` defaults to `settings.LOGOUT_REDIRECT_URL`, else `settings.LOGIN_URL`.
    """
    get_auth().sessions.sign_out(request.session)
    request.account = None
    _say(request, messages.SUCCESS, message)
    return HttpResponseRedirect(resolve_url(to or _logged_out_url()))


def unlink(
    request: HttpRequest,
    provider: ProviderName,
    message: str | None = None,
    *,
    to: str | None = None,
) -> HttpResponseRedirect:
    """Unlink `provider` from the signed-in account, add `message`, redirect to `to`.

    This session goes on (`refresh`); the account's other sessions end, as after any
    change of its credentials. `to` defaults to `settings.LOGIN_REDIRECT_URL`.

    Raises:
        SignInRequired: No account is signed in.
        LastSignInMethod: It is the account's only way to sign in.
    """
    account = getattr(request, "account", None)
    if account is None:
        raise SignInRequired
    refresh(request, get_auth().unlink(account.id, provider))
    _say(request, messages.SUCCESS, message)
    return HttpResponseRedirect(resolve_url(to or conf.settings.LOGIN_REDIRECT_URL))


def refresh(request: HttpRequest, account: Account) -> None:
    """Keep this session signed in after the user's own change (unlink, new password)."""
    auth = get_auth()
    auth.sessions.refresh(request.session, account)
    request.account = auth.sessions.current(request.session)


# Redirect flows


def sign_in_with(
    request: HttpRequest, provider: ProviderName, *, return_to: str | None = None
) -> HttpResponseRedirect:
    """Redirect to `provider` to sign in; the flow is kept in the session."""
    start = get_auth().begin_sign_in(provider, session=request.session, return_to=return_to)
    return _go(start)


def link(
    request: HttpRequest, provider: ProviderName, *, return_to: str | None = None
) -> HttpResponseRedirect:
    """Redirect to `provider` to link it to the signed-in account.

    Raises:
        SignInRequired: No account is signed in.
    """
    start = get_auth().begin_link(provider, session=request.session, return_to=return_to)
    return _go(start)


def accept_invite_with(
    request: HttpRequest, provider: ProviderName, token: str, *, return_to: str | None = None
) -> HttpResponseRedirect:
    """Redirect to `provider` to accept the invitation of `token` by registering."""
    start = get_auth().invites.begin_accept(
        provider, token, session=request.session, return_to=return_to
    )
    return _go(start)


def complete(request: HttpRequest, *, to: str | None = None) -> HttpResponseRedirect:
    """Finish the flow of the callback request: add its message and redirect.

    The session is updated (`Auth.complete` with `session=`); the browser goes to the
    flow's `return_to`, else `to`, else `settings.LOGIN_REDIRECT_URL`. Use
    `complete_outcome` to act on the outcome yourself.
    """
    outcome = complete_outcome(request)
    if outcome.step != "signed_in":
        return HttpResponseRedirect(resolve_url(_next_step_url(outcome.step)))
    _say(request, messages.SUCCESS, outcome.message)
    return HttpResponseRedirect(
        resolve_url(outcome.return_to or to or conf.settings.LOGIN_REDIRECT_URL)
    )


def complete_outcome(request: HttpRequest) -> Outcome:
    """Finish the flow of the callback request; the session is updated.

    A sign-in or a registration signs in to a fresh session, under a new key and with
    a new CSRF token; a link keeps this session signed in.
    """
    auth = get_auth()
    outcome = auth.complete(request.GET, session=request.session)
    if outcome.kind == "linked":
        request.account = outcome.account  # the session's own account: a link needs it
    elif outcome.step != "signed_in":
        rotate_token(request)
        request.account = None
    else:
        _signed_in(request, outcome.account)
    return outcome


def login_required(
    view: Callable[Concatenate[HttpRequest, _P], _R],
) -> Callable[Concatenate[HttpRequest, _P], _R | HttpResponseRedirect]:
    """Send a visitor who is not signed in to `settings.LOGIN_URL`.

    Raises:
        ConfigurationError: `AuthMiddleware` did not run for the request.
    """

    @functools.wraps(view)
    def signed_in_only(
        request: HttpRequest, /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _R | HttpResponseRedirect:
        if not hasattr(request, "account"):
            raise ConfigurationError(detail="login_required: AuthMiddleware is not in MIDDLEWARE")
        if request.account is None:
            return HttpResponseRedirect(resolve_url(conf.settings.LOGIN_URL))
        return view(request, *args, **kwargs)

    return signed_in_only


class AuthMiddleware:
    """Puts `request.account` on every request; turns `AuthError`s into messages.

    List it after `SessionMiddleware`, `CsrfViewMiddleware` and `MessageMiddleware`.

    Raises:
        ConfigurationError: (when Django loads it) `settings.BPART_AUTH` names no
            `Auth`, Django's session or CSRF middleware is missing, or one of them or
            `MessageMiddleware` comes after this one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        get_auth()  # fails when Django loads the middleware, not on a request
        _check_order(type(self))
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Put the session's account on `request.account`, then answer the request."""
        session = request.session
        had_account = ACCOUNT_KEY in session
        request.account = get_auth().sessions.current(session)
        if had_account and request.account is None:
            _say(request, messages.ERROR, SESSION_ENDED)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """Django's hook: `refused` answers an `AuthError`; other errors pass."""
        if isinstance(exception, AuthError):
            return self.refused(request, exception)
        return None

    def refused(self, request: HttpRequest, error: AuthError) -> HttpResponse:
        """The answer to an `AuthError`: its message, and a redirect to `error_url`."""
        level = messages.INFO if isinstance(error, AdminConsentAnswered) else messages.ERROR
        _say(request, level, error.message)
        return HttpResponseRedirect(self.error_url(request, error))

    def error_url(self, request: HttpRequest, error: AuthError) -> str:
        """Where a refusal is shown: where the user was.

        The page the redirect flow began on (its `return_to`); else, for a form, the
        page that posted it (the `Referer`, when it is this site); else
        `settings.LOGIN_REDIRECT_URL` when signed in, `settings.LOGIN_URL` when not.
        """
        if error.return_to:
            return error.return_to
        if request.method == "POST":
            page = get_auth().sessions.referring_page(request.headers.get("Referer"))
            if page is not None:
                return page
        signed_in = getattr(request, "account", None) is not None
        return str(
            resolve_url(conf.settings.LOGIN_REDIRECT_URL if signed_in else conf.settings.LOGIN_URL)
        )


class CrossOriginMiddleware:
    """Refuses (403) a state-changing request a browser sent from another origin.

    Defence in depth beside Django's CSRF middleware, never instead of it:
    `auth.sessions.cross_origin_refused` (Fetch Metadata, then `Origin`), with the
    app's origin from `Auth(redirect_uri=...)`. List it before `CsrfViewMiddleware`.

    Raises:
        ConfigurationError: (when Django loads it) `settings.BPART_AUTH` names no
            `Auth`, or that `Auth` has no `redirect_uri`.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        get_auth().sessions.cross_origin_refused("GET", {})  # fails now, not per request
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        """Refuse a forged request; answer any other."""
        if get_auth().sessions.cross_origin_refused(request.method, request.headers):
            return HttpResponse(FORGED_REQUEST, status=403, content_type="text/plain")
        return self.get_response(request)


def _go(start: FlowStart) -> HttpResponseRedirect:
    return HttpResponseRedirect(start.url)


def _signed_in(request: HttpRequest, account: Account) -> None:
    rotate_token(request)  # a token seen before sign-in is worthless after
    request.account = account


def _say(request: HttpRequest, level: int, message: str | None) -> None:
    """A `django.contrib.messages` message, when there is one and messages are on."""
    if message:
        messages.add_message(request, level, message, fail_silently=True)


def _logged_out_url() -> str:
    return str(getattr(conf.settings, "LOGOUT_REDIRECT_URL", None) or conf.settings.LOGIN_URL)


def _check_order(middleware: type) -> None:
    """Django's session and CSRF middleware, and messages if used, come before `middleware`."""
    names = list(conf.settings.MIDDLEWARE)
    classes = [import_string(name) for name in names]
    mine = next((index for index, cls in enumerate(classes) if cls is middleware), None)
    if mine is None:  # not loaded from settings.MIDDLEWARE: the app wires it itself
        return
    for required in (_SESSIONS, _CSRF, _MESSAGES):
        base = import_string(required)
        found = [index for index, cls in enumerate(classes) if issubclass(cls, base)]
        if not found and required == _MESSAGES:
            continue
        if not found or found[0] > mine:
            raise ConfigurationError(
                detail=f"MIDDLEWARE: {required} must come before {names[mine]}"
            )
