"""What an app's own session needs: `auth.sessions`."""

from __future__ import annotations

import hmac
from collections.abc import MutableMapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

from bpart_auth import errors
from bpart_auth._input import MAX_CALLBACK_VALUE, text_problem
from bpart_auth.oidc.flowstate import check_return_to

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from bpart_auth.models import Account, FlowStart, SignInStep
    from bpart_auth.services.second_factors import SecondFactorGate
    from bpart_auth.store.base import AccountStore

__all__ = ["SessionService"]

Session = MutableMapping[str, Any]
"""The app's session: any mutable mapping (Flask's, Django's and Starlette's all are).

bpart_auth writes JSON-safe values only (str, int, lists), under the two keys below,
and always assigns them anew, so frameworks that save a session when one of its keys
is set (Flask, Django) notice every change.
"""

ACCOUNT_KEY: Final = "bpart_auth.account"
"""Where the session keeps its account's stamp (`SessionService.stamp`)."""
FLOWS_KEY: Final = "bpart_auth.flows"
"""Where the session keeps its pending redirect flows: `[state, sealed_flow, expiry]`."""
MAX_PENDING_FLOWS: Final = 3
"""Redirect flows a session keeps at once (one per tab); a fourth drops the oldest.

A Microsoft flow seals to about 650 characters, so three stay well inside the 4 KB a
browser keeps of a cookie session (Flask's and Starlette's default).
"""

# RFC 9110 section 9.2.1: the methods that change nothing, as Go's check has them.
_SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# Fetch Metadata: "none" is a navigation the user started (address bar, bookmark).
_TRUSTED_SITES: Final = frozenset({"same-origin", "none"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# A stamp is an ISO 8601 time (32 characters at most), a space and a store's id
# (1000 characters at most in our stores).
_MAX_STAMP: Final = 1100
# Longer header values are refused unread: no browser sends an origin that long.
_MAX_HEADER: Final = 2048


class Headers(Protocol):
    """Request headers as any framework has them: a mapping, or werkzeug's `Headers`."""

    def items(self) -> Iterable[tuple[str, str]]:
        """Each header's name and value."""
        ...


_Origin = tuple[str, str, int]  # (scheme, host, port), lowercase, the default port filled in


class SessionService:
    """What an app's own session needs: the stamp it keeps, and the requests it trusts.

    Reach it as `auth.sessions`. The app keeps its sessions; this makes and checks
    plain values, so the same calls serve Flask, Django and FastAPI:

    - `stamp(account)` is the one string a session keeps about its account: the
      account id and the version of its credentials. `account(stamp)` turns it back
      into the account on every request, or None when the session must end.
    - `cross_origin_refused(method, headers)` refuses a state-changing request that
      a browser sent from another origin (cross-site request forgery).

    Examples:
        >>> from bpart_auth import Auth, MemoryStore
        >>> auth = Auth(MemoryStore(), redirect_uri="https://app.example/auth/callback")
        >>> ann = auth.create_account(email="ann@example.com")
        >>> stamp = auth.sessions.stamp(ann)  # at sign-in, in a fresh session
        >>> auth.sessions.account(stamp) == ann  # on every request
        True
        >>> auth.sessions.cross_origin_refused("POST", {"Sec-Fetch-Site": "cross-site"})
        True
    """

    def __init__(
        self,
        *,
        store: AccountStore,
        redirect_uri: str | None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._origin = None if redirect_uri is None else _app_origin(redirect_uri)
        self._clock = clock
        self._gate: SecondFactorGate | None = None

    # The app's session

    def sign_in(
        self, session: Session, account: Account, *, provider_mfa: bool = False
    ) -> SignInStep:
        """Sign `account` in to the app's session after its first factor.

        Call it after every first-factor success: `passwords.sign_in`,
        `invites.accept_with_password`, `passwords.complete_reset` (`complete` with
        `session=` calls it itself). The session is cleared first, so nothing planted
        in it before (by an attacker who fixed the session, or a previous user)
        survives: no session fixation. A session with a `cycle_key()` method
        (Django's) also gets a new key, so a session id known before sign-in is
        worthless after.

        When the account has a second factor (or the policy requires one it lacks),
        the session is not signed in yet: it holds a pending sign-in, and the answer
        says what comes next (`auth.second_factors`).

        Args:
            session: The app's session.
            account: The account whose first factor passed.
            provider_mfa: The provider reported multi-factor authentication (see
                `SecondFactorPolicy.provider_mfa_counts`); `complete` sets it.

        Returns:
            `"signed_in"`, or `"second_factor"` (send the user to the second step) or
            `"enrol_second_factor"` (to enrolment: the policy requires a factor).

        Raises:
            AccountDisabled: The account is disabled.

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore())
            >>> ann = auth.create_account(email="ann@example.com")
            >>> session = {"planted": "by someone else"}
            >>> auth.sessions.sign_in(session, ann)
            'signed_in'
            >>> auth.sessions.current(session) == ann, "planted" in session
            (True, False)
        """
        if account.disabled:
            raise errors.AccountDisabled
        step: SignInStep = "signed_in"
        if self._gate is not None:
            step = self._gate.step_for(account, provider_mfa=provider_mfa)
        self._fresh_session(session, account, step)
        return step

    def _sign_in_after_second_factor(self, session: Session, account: Account) -> None:
        """Sign in for real once the second step passed (`auth.second_factors` only)."""
        if account.disabled:
            raise errors.AccountDisabled
        self._fresh_session(session, account, "signed_in")

    def _fresh_session(self, session: Session, account: Account, step: SignInStep) -> None:
        """Clear the session (a new key where it has one), then sign in or hold the step."""
        session.clear()
        if step == "signed_in":
            session[ACCOUNT_KEY] = self.stamp(account)
        elif self._gate is not None:
            self._gate.hold(session, account, step)
        cycle_key = getattr(session, "cycle_key", None)
        if callable(cycle_key):
            cycle_key()

    def current(self, session: Session) -> Account | None:
        """The session's account, or None; call it on every request.

        None when the session holds no account. When it holds one that is gone,
        disabled, or whose credentials (password, linked identities) changed since
        this session signed in (elsewhere: a reset, an unlink on another device),
        the session is ended (`sign_out`) and None is returned.

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore())
            >>> ann = auth.create_account(email="ann@example.com")
            >>> session = {}
            >>> _ = auth.sessions.sign_in(session, ann)
            >>> _ = auth.disable_account(ann.id)
            >>> auth.sessions.current(session), session
            (None, {})
        """
        stamp = session.get(ACCOUNT_KEY)
        if stamp is None:
            return None
        account = self.account(stamp)
        if account is None:
            self.sign_out(session)
        return account

    def refresh(self, session: Session, account: Account) -> None:
        """Keep this session signed in after the user's own credentials change.

        A new password, a link or an unlink changes the account's credentials, which
        ends every session signed in before; call this with the updated account
        (what `unlink`, `passwords.change` return) so the session that made the
        change goes on. Nothing happens when the session is not signed in to that
        account: this never signs anyone in (use `sign_in`).

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> from bpart_auth.testing import CHEAP_FOR_TESTS
            >>> auth = Auth(MemoryStore(), password_hashing=CHEAP_FOR_TESTS)
            >>> ann = auth.create_account(email="ann@example.com", password="a long passphrase")
            >>> here, elsewhere = {}, {}
            >>> _ = auth.sessions.sign_in(here, ann)
            >>> _ = auth.sessions.sign_in(elsewhere, ann)
            >>> ann = auth.passwords.change(ann.id, current="a long passphrase",
            ...                             new="another long passphrase")
            >>> auth.sessions.refresh(here, ann)
            >>> auth.sessions.current(here) == ann, auth.sessions.current(elsewhere)
            (True, None)
        """
        if _stamp_account_id(session.get(ACCOUNT_KEY)) == account.id:
            session[ACCOUNT_KEY] = self.stamp(account)

    def sign_out(self, session: Session) -> None:
        """End the session: everything in it is dropped, pending flows included.

        A session with a `flush()` method (Django's) is flushed: its data is deleted
        from the session store and its key replaced.
        """
        flush = getattr(session, "flush", None)
        if callable(flush):
            flush()
        else:
            session.clear()

    def signed_in_account_id(self, session: Session) -> str | None:
        """The account id the session's stamp names, unchecked; None when it names none.

        For a quick look only (no store read): `current` is the check.
        """
        return _stamp_account_id(session.get(ACCOUNT_KEY))

    def keep_flow(self, session: Session, start: FlowStart) -> None:
        """Keep a redirect flow in the session, under its OAuth `state` (`begin_*` does).

        Several flows wait at once (one per tab); expired ones are dropped, and past
        `MAX_PENDING_FLOWS` the oldest.
        """
        now = self._now_timestamp()
        kept = [flow for flow in _pending_flows(session) if now is None or flow[2] > now]
        kept = kept[-(MAX_PENDING_FLOWS - 1) :]
        kept.append([start.state, start.sealed_flow, int(start.expires_at.timestamp()) + 1])
        session[FLOWS_KEY] = kept

    def take_flow(self, session: Session, state: object) -> str | None:
        """Remove and return the sealed flow the session keeps for this OAuth `state`.

        None when the session keeps no flow for it (begun in another session or
        browser, completed already, dropped, or never begun). `complete` does this.
        """
        pending = _pending_flows(session)
        if not pending:
            return None
        found = None
        if isinstance(state, str) and text_problem(state, limit=MAX_CALLBACK_VALUE) is None:
            wanted = state.encode()
            for flow in pending:
                if hmac.compare_digest(flow[0].encode(), wanted):
                    found = flow
        if found is None:
            return None
        rest = [flow for flow in pending if flow is not found]
        if rest:
            session[FLOWS_KEY] = rest
        else:
            session.pop(FLOWS_KEY, None)
        return str(found[1])

    def _now_timestamp(self) -> float | None:
        return None if self._clock is None else self._clock().timestamp()

    def stamp(self, account: Account) -> str:
        """The one value a session keeps about its account: store it at sign-in.

        It holds the account id and the version of the account's credentials
        (`credentials_changed_at`); treat it as opaque. Store it in a fresh session
        at every sign-in. After the user's own change (a link, an unlink, a new
        password), store the stamp of the updated account in the same session: that
        session goes on, and every other one ends.

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore())
            >>> ann = auth.create_account(email="ann@example.com")
            >>> ann.id in auth.sessions.stamp(ann)
            True
        """
        # The time first: an ISO 8601 time has no space, while a store's ids might.
        return f"{account.credentials_changed_at.isoformat()} {account.id}"

    def account(self, stamp: str | None) -> Account | None:
        """The account of a session stamp; None when there is none or the session must end.

        Call it on every request with what the session keeps (None when it keeps
        nothing). None when the stamp is missing or malformed, or its account is gone,
        disabled, or its credentials (password, linked identities) changed since the
        stamp was made; disabling counts as a change, so enabling the account again
        brings no session back. The stamp must name the current credentials exactly, so
        a change made by an app instance whose clock is behind counts too. When a stamp
        was there and this says None, end the session (clear it).

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore())
            >>> ann = auth.create_account(email="ann@example.com")
            >>> stamp = auth.sessions.stamp(ann)
            >>> _ = auth.disable_account(ann.id)
            >>> auth.sessions.account(stamp) is None
            True
            >>> auth.sessions.account(None) is None
            True
        """
        if not isinstance(stamp, str) or text_problem(stamp, limit=_MAX_STAMP) is not None:
            return None
        version, _, account_id = stamp.partition(" ")
        try:
            changed_at = datetime.fromisoformat(version)
        except ValueError:
            return None
        if not account_id or changed_at.utcoffset() is None:
            return None
        account = self._store.get_account(account_id)
        if account is None or account.disabled or account.credentials_changed_at != changed_at:
            return None
        return account

    def referring_page(self, referer: object) -> str | None:
        """The page of the app a form was posted from, to show a refusal there; or None.

        The adapters send the browser back to it when a form's request fails (a wrong
        password, an invitation that cannot be accepted). It is the path and query of
        `referer` (the request's `Referer` header) when that is a page of the app's own
        origin, the one of `Auth(redirect_uri=...)`, and the path passes the same
        checks as a flow's `return_to` (`check_return_to`: one leading `/`, no
        backslash, nothing that decodes to another host). Anything else, including a
        value that is not a str of at most 2048 characters, is None: never an open
        redirect.

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore(), redirect_uri="https://app.example/auth/callback")
            >>> auth.sessions.referring_page("https://app.example/invite/abc?x=1")
            '/invite/abc?x=1'
            >>> auth.sessions.referring_page("https://evil.example/") is None
            True
            >>> auth.sessions.referring_page("https://app.example//evil.example/") is None
            True
        """
        if self._origin is None or not isinstance(referer, str):
            return None
        if text_problem(referer, limit=_MAX_HEADER) is not None:
            return None
        referer = referer.strip()
        if _parse_origin(referer) != self._origin:
            return None
        parts = urlsplit(referer)  # parsed once already by _parse_origin: no ValueError
        page = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            return check_return_to(page)
        except errors.InvalidReturnTo:
            return None

    def cross_origin_refused(self, method: str, headers: Headers) -> bool:
        """Whether to refuse a request as cross-site request forgery (CSRF): answer 403.

        Call it on every request, before acting on it. GET, HEAD and OPTIONS pass
        (they must change nothing). Any other method is refused unless the browser
        says it comes from the app's own origin, that of `Auth(redirect_uri=...)`:

        - `Sec-Fetch-Site` (sent to HTTPS sites by every browser since 2023) must be
          `same-origin`, or `none` (the user's own navigation). `same-site` is
          refused too, so a sibling subdomain cannot post either.
        - Without it, `Origin` (sent with every POST by every browser since 2020)
          must be the app's origin exactly: scheme, host and port.
        - A request with neither header is refused: it comes from a script, which
          can send `Origin`, or from a browser too old to protect.

        This is Go 1.25's `net/http.CrossOriginProtection`, stricter on requests
        without those headers. Unlike a token in each form it needs no state; like
        one, it stops login CSRF (a forged POST to the sign-in form), since it does
        not depend on a session cookie.

        Args:
            method: The request's HTTP method.
            headers: The request's headers (`request.headers` in Flask, Django or
                Starlette); names in any case.

        Returns:
            True when the request must be refused.

        Raises:
            ConfigurationError: `Auth` has no `redirect_uri`, so the app's origin is
                unknown.

        Examples:
            >>> from bpart_auth import Auth, MemoryStore
            >>> auth = Auth(MemoryStore(), redirect_uri="https://app.example/auth/callback")
            >>> auth.sessions.cross_origin_refused("POST", {"Origin": "https://app.example"})
            False
            >>> auth.sessions.cross_origin_refused("POST", {"Sec-Fetch-Site": "same-site"})
            True
            >>> auth.sessions.cross_origin_refused("GET", {"Sec-Fetch-Site": "cross-site"})
            False
        """
        if self._origin is None:
            raise errors.ConfigurationError(
                detail="cross_origin_refused needs Auth(redirect_uri=...) for the app's origin"
            )
        if text_problem(method, limit=_MAX_HEADER) is None and method.upper() in _SAFE_METHODS:
            return False
        # Only the two headers are read; a value that is not a short str counts as
        # absent, so a mangled request is refused rather than trusted.
        site = origin = None
        for name, value in headers.items():
            if text_problem(name, limit=_MAX_HEADER) or text_problem(value, limit=_MAX_HEADER):
                continue
            lowered = name.lower()
            if lowered == "sec-fetch-site":
                site = value
            elif lowered == "origin":
                origin = value
        if site is not None:
            return site.strip().lower() not in _TRUSTED_SITES
        return origin is None or _parse_origin(origin.strip()) != self._origin


def _stamp_account_id(stamp: object) -> str | None:
    """The account id in a stamp, or None when it is not one."""
    if not isinstance(stamp, str) or text_problem(stamp, limit=_MAX_STAMP) is not None:
        return None
    _, _, account_id = stamp.partition(" ")
    return account_id or None


def _pending_flows(session: Session) -> list[list[Any]]:
    """The session's pending flows, each `[state, sealed_flow, expiry]`; malformed ones skipped."""
    value = session.get(FLOWS_KEY)
    if not isinstance(value, list):
        return []
    return [
        list(flow)
        for flow in value[-MAX_PENDING_FLOWS:]
        if isinstance(flow, (list, tuple))
        and len(flow) == 3  # noqa: PLR2004 - the three fields above
        and isinstance(flow[0], str)
        and isinstance(flow[1], str)
        and isinstance(flow[2], int)
    ]


def _parse_origin(url: str) -> _Origin | None:
    """The origin of an absolute http(s) URL, or None when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unbalanced IPv6 bracket, or a port out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


def _app_origin(redirect_uri: str) -> _Origin:
    """The app's origin, from its callback URL."""
    origin = _parse_origin(redirect_uri)
    if origin is None or "#" in redirect_uri:  # RFC 6749 section 3.1.2: no fragment
        raise errors.ConfigurationError(
            detail=f"Auth: redirect_uri must be an absolute http(s) URL, not {redirect_uri!r}"
        )
    return origin
