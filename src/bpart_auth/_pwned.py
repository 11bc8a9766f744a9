"""The optional breached-password check: Have I Been Pwned's k-anonymity range API.

Only the first 5 hex characters of the password's SHA-1 leave the process; the
service answers with every suffix it knows under that prefix (`SUFFIX:COUNT` lines),
padded with made-up suffixes of count 0 (`Add-Padding: true`) so the answer's size
says nothing either. The match is found here.
See https://haveibeenpwned.com/API/v3#SearchingPwnedPasswordsByRange.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from http import HTTPStatus
from typing import TYPE_CHECKING, Final, Literal
from urllib.parse import urlsplit

from bpart_auth._version import __version__
from bpart_auth.errors import ConfigurationError, PasswordBreached, PasswordCheckUnavailable

if TYPE_CHECKING:
    import requests

__all__ = ["PwnedPasswords"]

_log = logging.getLogger("bpart_auth.passwords")

DEFAULT_RANGE_URL: Final = "https://api.pwnedpasswords.com/range/{prefix}"
_PREFIX_LENGTH: Final = 5
# A padded answer holds 800 to 1,000 lines of about 40 bytes; anything near 1 MiB is
# not an answer, and reading on would let a broken or hostile server hold the worker.
_MAX_ANSWER_BYTES: Final = 1 << 20
_LINE: Final = re.compile(r"([0-9A-Fa-f]{35}):(\d{1,12})")

IfUnavailable = Literal["allow", "refuse"]


def _threshold(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(detail=f"threshold must be an int >= 1, got {value!r}")
    return value


def _timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigurationError(detail=f"timeout must be a positive number, got {value!r}")
    return float(value)


def _range_url(value: object) -> str:
    if not isinstance(value, str) or "{prefix}" not in value or urlsplit(value).scheme != "https":
        raise ConfigurationError(detail=f"url must be https with a {{prefix}}, got {value!r}")
    return value


class PwnedPasswords:
    """Refuse new passwords found in data breaches (Have I Been Pwned's Pwned Passwords).

    Off unless an app turns it on: `PasswordPolicy(breached=PwnedPasswords())`. The
    policy calls it last, after its own cheaper rules, with the normalised password.
    Only the first 5 hex characters of the password's SHA-1 are sent, with the
    `Add-Padding: true` header; nothing is fetched at construction.

    When the service cannot answer (connection error, timeout, an HTTP status other
    than 200, an answer over 1 MiB or not in the range format), the default,
    `if_unavailable="allow"`, accepts the password and logs a warning on the
    `bpart_auth.passwords` logger: an outage of a third-party service should not stop
    users from setting passwords, and the built-in list still applies.
    `if_unavailable="refuse"` raises `PasswordCheckUnavailable` instead.

    Args:
        threshold: Refuse a password seen in breaches at least this many times. 1
            (the default) refuses any breached password.
        if_unavailable: `"allow"` (fail open, log a warning) or `"refuse"` (fail
            closed with `PasswordCheckUnavailable`).
        session: The `requests.Session` to ask with (its proxies, certificates and
            adapters apply); a new one by default.
        timeout: Seconds allowed to connect, and to wait between bytes received.
        url: The range endpoint, an https URL with a `{prefix}` placeholder; change
            it only for a mirror that speaks the same API.

    Raises:
        ConfigurationError: A threshold under 1, an unknown `if_unavailable`, a
            timeout that is not a positive finite number, a session that is not a
            `requests.Session`, or a URL that is not https or lacks `{prefix}`.

    Examples:
        >>> from bpart_auth import PasswordPolicy, PwnedPasswords
        >>> policy = PasswordPolicy(breached=PwnedPasswords(threshold=10, timeout=1.5))
        >>> policy.breached.threshold
        10
    """

    __slots__ = ("_session", "if_unavailable", "threshold", "timeout", "url")

    def __init__(
        self,
        *,
        threshold: int = 1,
        if_unavailable: IfUnavailable = "allow",
        session: requests.Session | None = None,
        timeout: float = 2.0,
        url: str = DEFAULT_RANGE_URL,
    ) -> None:
        if if_unavailable not in ("allow", "refuse"):
            raise ConfigurationError(
                detail=f"if_unavailable must be 'allow' or 'refuse', got {if_unavailable!r}"
            )
        import requests  # noqa: PLC0415 - only an app that checks breaches pays for it

        if session is None:
            session = requests.Session()
        elif not isinstance(session, requests.Session):
            raise ConfigurationError(detail="session must be a requests.Session")
        self.threshold = _threshold(threshold)
        self.if_unavailable: IfUnavailable = if_unavailable
        self.timeout = _timeout(timeout)
        self.url = _range_url(url)
        self._session = session

    def __repr__(self) -> str:
        return (
            f"PwnedPasswords(threshold={self.threshold}, "
            f"if_unavailable={self.if_unavailable!r}, timeout={self.timeout}, url={self.url!r})"
        )

    def check(self, password: str) -> None:
        """Refuse `password` if breaches have seen it `threshold` times or more.

        Args:
            password: The normalised password (`PasswordPolicy.check` passes it).

        Raises:
            PasswordBreached: Seen at least `threshold` times; `count` says how often.
            PasswordCheckUnavailable: The service could not answer and
                `if_unavailable` is `"refuse"`.
        """
        try:
            count = self.count(password)
        except PasswordCheckUnavailable as exc:
            if self.if_unavailable == "refuse":
                raise
            _log.warning("Pwned Passwords check skipped, password allowed: %s", exc.detail)
            return
        if count >= self.threshold:
            raise PasswordBreached(count=count, detail=f"seen {count} times in breaches")

    def count(self, password: str) -> int:
        """How many times the breach corpus has seen `password`; 0 when never.

        Args:
            password: The password, as `check` gets it.

        Returns:
            The count the service gives for the password's SHA-1 (0 for a padding row
            or a suffix it does not list).

        Raises:
            PasswordCheckUnavailable: The service could not answer (whatever
                `if_unavailable` says: `check` applies it).
        """
        # SHA-1 is the API's key, not a protection: the hash never leaves the process.
        digest = hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()
        prefix, suffix = digest[:_PREFIX_LENGTH], digest[_PREFIX_LENGTH:]
        for line in self._range(prefix).splitlines():
            if not line.strip():
                continue
            match = _LINE.fullmatch(line.strip())
            if match is None:
                raise PasswordCheckUnavailable(detail="the answer is not in the range format")
            if match.group(1).upper() == suffix:
                return int(match.group(2))
        return 0

    def _range(self, prefix: str) -> str:
        """The service's answer for one prefix, read to at most 1 MiB."""
        import requests  # noqa: PLC0415 - __init__ loaded it

        url = self.url.format(prefix=prefix)
        headers = {"Add-Padding": "true", "User-Agent": f"bpart_auth/{__version__}"}
        try:
            with self._session.get(
                url, headers=headers, timeout=self.timeout, stream=True, allow_redirects=False
            ) as response:
                if response.status_code != HTTPStatus.OK:
                    raise PasswordCheckUnavailable(detail=f"HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_content(chunk_size=64 * 1024):
                    body += chunk
                    if len(body) > _MAX_ANSWER_BYTES:
                        raise PasswordCheckUnavailable(detail="the answer is over 1 MiB")
        except requests.RequestException as exc:
            # Not `str(exc)`: it holds the URL, and so the prefix, which stays out of logs.
            host = urlsplit(url).hostname
            raise PasswordCheckUnavailable(detail=f"{type(exc).__name__} from {host}") from exc
        try:
            return body.decode("ascii")
        except UnicodeDecodeError as exc:
            raise PasswordCheckUnavailable(detail="the answer is not ASCII") from exc
