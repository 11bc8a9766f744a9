"""What an app's own session needs: `auth.sessions`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Final, Protocol
from urllib.parse import urlsplit

from bpart_auth import errors
from bpart_auth._input import text_problem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from bpart_auth.models import Account
    from bpart_auth.store.base import AccountStore

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

    def __init__(self, *, store: AccountStore, redirect_uri: str | None) -> None:
        self._store = store
        self._origin = None if redirect_uri is None else _app_origin(redirect_uri)

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
