"""Throttling of failed sign-ins, per account and per client address.

`Throttle` is the policy (how many failures in what window, which keys) and
`ThrottleBackend` is where failures are counted: `MemoryThrottle` in-process (one app
process), `RedisThrottle` shared by every app instance on one Redis, `SQLThrottle`
shared through the SQL store. `Auth` given no throttle counts in the store when it
can (`SQLStore`), else in-process.

The order of use at sign-in:

1. `throttle.check(...)` BEFORE any argon2 work: a throttled attempt raises
   `TooManyAttempts` and costs the server nothing.
2. Verify the password (or run the dummy verify for an unknown email).
3. `throttle.failed(...)` on a wrong password or unknown email, or
   `throttle.succeeded(...)` on success.

The window is a sliding log: a key is throttled while it has at least `failures`
failures in the last `window`, and `retry_after` is exactly the time until enough of
them have left the window. Checking does not count; only `failed` does. So requests that run
concurrently all pass `check` before any of them records its failure: the overshoot
is bounded by how many sign-ins for one account run at the same moment.

Examples:
    >>> now = [1_700_000_000.0]  # a clock the example moves by hand
    >>> throttle = Throttle(clock=lambda: now[0])
    >>> for _ in range(5):
    ...     throttle.check(email="ann@example.com", client_address="203.0.113.9")
    ...     throttle.failed(email="ann@example.com", client_address="203.0.113.9")
    >>> try:
    ...     throttle.check(email="ann@example.com", client_address="203.0.113.9")
    ... except TooManyAttempts as error:
    ...     error.code, error.retry_after
    ('too_many_attempts', 900.0)
    >>> now[0] += 900
    >>> throttle.check(email="ann@example.com", client_address="203.0.113.9")
"""

from __future__ import annotations

import bisect
import hashlib
import ipaddress
import math
import secrets
import threading
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Final, Protocol, cast, runtime_checkable

from bpart_auth._email import normalize_email
from bpart_auth._input import MAX_EMAIL_INPUT, text_problem
from bpart_auth._redis import redis_client
from bpart_auth.errors import (
    ConfigurationError,
    InvalidEmail,
    InvalidInput,
    StoreUnavailable,
    TooManyAttempts,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    import redis

__all__ = [
    "FailureLimit",
    "MemoryThrottle",
    "RedisThrottle",
    "Throttle",
    "ThrottleBackend",
]

_MAX_FAILURES: Final = 10_000
_MAX_WINDOW: Final = timedelta(days=7)
# An IPv6 address with a zone id and an embedded IPv4 one fits easily; a proxy's
# comma-separated list should be split by the app before it gets here.
_MAX_ADDRESS_INPUT: Final = 256
_SWEEP_EVERY: Final = 60.0  # seconds of clock time between MemoryThrottle clean-ups


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureLimit:
    """At most `failures` failed sign-ins within any `window`.

    Attributes:
        failures: How many failures throttle the key (1 to 10,000).
        window: How far back failures count (1 second to 7 days).

    Raises:
        ConfigurationError: A value of the wrong type or out of range.

    Examples:
        >>> FailureLimit(failures=5, window=timedelta(minutes=15)).window_seconds
        900.0
    """

    failures: int
    window: timedelta

    def __post_init__(self) -> None:
        if isinstance(self.failures, bool) or not isinstance(self.failures, int):
            raise ConfigurationError(detail=f"failures must be an int, got {self.failures!r}")
        if not 1 <= self.failures <= _MAX_FAILURES:
            raise ConfigurationError(
                detail=f"failures must be between 1 and {_MAX_FAILURES}, got {self.failures}"
            )
        if not isinstance(self.window, timedelta):
            raise ConfigurationError(detail=f"window must be a timedelta, got {self.window!r}")
        if not timedelta(seconds=1) <= self.window <= _MAX_WINDOW:
            raise ConfigurationError(
                detail=f"window must be between 1 second and 7 days, got {self.window}"
            )

    @property
    def window_seconds(self) -> float:
        """The window in seconds."""
        return self.window.total_seconds()


def _wait(newest_first: Sequence[float], limit: FailureLimit, now: float) -> float | None:
    """Seconds until fewer than `limit.failures` of these failures lie in the window.

    `newest_first` holds the failure times inside the window, newest first; the
    `failures`-th newest is the one whose expiry frees the key.
    """
    if len(newest_first) < limit.failures:
        return None
    return newest_first[limit.failures - 1] + limit.window_seconds - now


@runtime_checkable
class ThrottleBackend(Protocol):
    """Where failed sign-ins are counted; `Throttle` decides what counts and when.

    Keys are opaque ASCII strings of at most 100 characters (no emails or
    addresses in clear); `now` is seconds since the epoch from the `Throttle`'s
    clock, shared by all app instances. A failure at time `t` counts while
    `now - limit.window < t`. A backend may forget failures older than the window
    and may keep only the newest `limit.failures` of a key, since no more are
    needed to answer `retry_after`.

    Errors: a backend that cannot reach its storage raises `StoreUnavailable`
    (never its driver's exception), so throttling fails closed.
    """

    def retry_after(self, key: str, *, limit: FailureLimit, now: float) -> float | None:
        """Seconds until `key` has fewer than `limit.failures` failures in the window.

        None when it has fewer already. Counts nothing and changes nothing.
        """
        ...

    def record_failure(self, key: str, *, limit: FailureLimit, now: float) -> None:
        """Record one failure of `key` at `now`.

        Atomic: N concurrent calls, from any number of app instances, record N
        failures.
        """
        ...

    def reset(self, key: str) -> None:
        """Forget every failure of `key`."""
        ...


class MemoryThrottle:
    """Counts failures in this process's memory, for one app process.

    The default of `Throttle()`, and of `Auth` on a store that keeps no throttle
    state (`MemoryStore`). Thread-safe. Each process has its own counts, so an app
    served by several processes or servers needs a shared backend (`SQLThrottle`,
    which `Auth` uses by default with `SQLStore`, or `RedisThrottle`).
    Keys whose failures have all left their window are dropped about once a minute.

    Examples:
        >>> backend = MemoryThrottle()
        >>> limit = FailureLimit(failures=2, window=timedelta(seconds=60))
        >>> backend.record_failure("k", limit=limit, now=100.0)
        >>> backend.record_failure("k", limit=limit, now=110.0)
        >>> backend.retry_after("k", limit=limit, now=120.0)
        40.0
    """

    __slots__ = ("_expires", "_failures", "_lock", "_next_sweep")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}  # oldest first
        self._expires: dict[str, float] = {}  # when a key's newest failure leaves its window
        self._next_sweep = -math.inf

    def retry_after(self, key: str, *, limit: FailureLimit, now: float) -> float | None:
        """See `ThrottleBackend.retry_after`."""
        since = now - limit.window_seconds
        with self._lock:
            times = self._failures.get(key, ())
            newest_first = [t for t in reversed(times) if t > since]
        return _wait(newest_first, limit, now)

    def record_failure(self, key: str, *, limit: FailureLimit, now: float) -> None:
        """See `ThrottleBackend.record_failure`."""
        since = now - limit.window_seconds
        with self._lock:
            times = self._failures.setdefault(key, [])
            bisect.insort(times, now)
            del times[: max(bisect.bisect_right(times, since), len(times) - limit.failures)]
            self._expires[key] = times[-1] + limit.window_seconds
            if now >= self._next_sweep:
                self._sweep(now)

    def reset(self, key: str) -> None:
        """See `ThrottleBackend.reset`."""
        with self._lock:
            self._failures.pop(key, None)
            self._expires.pop(key, None)

    def _sweep(self, now: float) -> None:
        for key in [key for key, expires in self._expires.items() if expires <= now]:
            del self._failures[key], self._expires[key]
        self._next_sweep = now + _SWEEP_EVERY


class RedisThrottle:
    """Counts failures in Redis, shared by every app instance that uses the same keys.

    One sorted set per key (member: a unique id, score: the failure time), written
    in a MULTI/EXEC transaction and read with one command, so counts are exact under
    concurrency. Keys carry `prefix` and expire one window after their newest
    failure. Needs the `redis` extra; `redis` is imported only when this class is
    constructed, and nothing connects until the first call.

    Args:
        client: A `redis.Redis` client, or a URL (`redis://host:6379/0`) to make one.
        prefix: Put before every key, to share a Redis database with other data.
        timeout: Connect and socket timeout, in seconds, of a client made from a URL.

    Raises:
        ConfigurationError: The `redis` package is missing, or an argument is wrong.
        StoreUnavailable: (from each method) Redis could not be reached or failed.

    Examples:
        >>> backend = RedisThrottle("redis://127.0.0.1:6379/0", prefix="myapp:throttle:")
        >>> backend.prefix
        'myapp:throttle:'
    """

    __slots__ = ("_client", "_errors", "prefix")

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        prefix: str = "bpart_auth:throttle:",
        timeout: float = 2.0,
    ) -> None:
        self._client, self._errors = redis_client(
            client, timeout=timeout, prefix=prefix, owner="RedisThrottle"
        )
        self.prefix = prefix

    def retry_after(self, key: str, *, limit: FailureLimit, now: float) -> float | None:
        """See `ThrottleBackend.retry_after`."""
        try:
            # Only the `failures`-th newest failure inside the window is needed.
            reply = self._client.zrevrangebyscore(
                self.prefix + key,
                "+inf",
                f"({now - limit.window_seconds!r}",
                start=limit.failures - 1,
                num=1,
                withscores=True,
            )
        except self._errors as exc:
            raise StoreUnavailable(detail=f"Redis: {type(exc).__name__}: {exc}") from exc
        # Synchronous client, withscores=True: [(member, score)] (redis-py's stubs
        # describe every reply shape of every client at once).
        newest = cast("list[tuple[bytes, float]]", reply)
        if not newest:
            return None
        return float(newest[0][1]) + limit.window_seconds - now

    def record_failure(self, key: str, *, limit: FailureLimit, now: float) -> None:
        """See `ThrottleBackend.record_failure`."""
        name = self.prefix + key
        member = f"{now!r}:{secrets.token_hex(8)}"  # unique, so concurrent failures all count
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.zadd(name, {member: now})
                pipe.zremrangebyscore(name, "-inf", now - limit.window_seconds)
                pipe.zremrangebyrank(name, 0, -(limit.failures + 1))  # keep the newest N
                pipe.pexpire(name, math.ceil(limit.window_seconds * 1000))
                pipe.execute()
        except self._errors as exc:
            raise StoreUnavailable(detail=f"Redis: {type(exc).__name__}: {exc}") from exc

    def reset(self, key: str) -> None:
        """See `ThrottleBackend.reset`."""
        try:
            self._client.delete(self.prefix + key)
        except self._errors as exc:
            raise StoreUnavailable(detail=f"Redis: {type(exc).__name__}: {exc}") from exc


def _digest(kind: str, value: str) -> str:
    # Hashed so no email or address is stored in clear in Redis or a SQL table, and
    # every key has the same short length. 128 bits leave no room for collisions.
    return f"{kind}:{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:32]}"


def _account_key(email: str) -> str:
    try:
        return _digest("account", normalize_email(email))  # bounds it before any work
    except InvalidEmail:
        pass
    # A malformed email is still throttled: it is someone guessing all the same.
    problem = text_problem(email, limit=MAX_EMAIL_INPUT)
    if problem is not None:
        # Not a str, over-long or not encodable: never normalised (quadratic in the
        # length for a crafted string), so it costs microseconds. The reason is the
        # key, so every such attempt shares one stable bucket.
        return _digest("account", f"unusable email: {problem}")
    return _digest("account", unicodedata.normalize("NFC", email.strip()).casefold())


def _address_key(client_address: str) -> str:
    if not isinstance(client_address, str):
        raise InvalidInput(field="client_address", detail="client_address must be a str or None")
    problem = text_problem(client_address, limit=_MAX_ADDRESS_INPUT)
    if problem is not None:
        # An app may take the address from a header the client sets (X-Forwarded-For):
        # an over-long or unencodable one shares one bucket, parsed and hashed never.
        return _digest("address", f"unusable address: {problem}")
    text = client_address.strip()
    if not text:
        raise InvalidInput(
            field="client_address", detail="client_address must be a non-empty string or None"
        )
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return _digest("address", text)  # not an IP (a test client, a socket): as given
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _digest("address", str(ip.ipv4_mapped))
        # One IPv6 subscriber gets a whole /64 (RFC 6177); counting single addresses
        # would let them switch address at each guess.
        return _digest("address", str(ipaddress.IPv6Network((ip, 64), strict=False)))
    return _digest("address", str(ip))


@dataclass(frozen=True, slots=True, kw_only=True)
class Throttle:
    """Limits failed sign-ins per account (normalised email) and per client address.

    Either limit throttles: a guesser spread over many addresses is stopped by the
    account limit, and one trying many accounts from one address by the address
    limit. The defaults are 5 failures per account and 50 per address (an IPv6
    address counts as its /64), each in a sliding 15-minute window.

    Fails closed: when the backend is unreachable, every method raises
    `StoreUnavailable`, so sign-in is refused rather than left unthrottled.

    Attributes:
        backend: Where failures are counted; `MemoryThrottle()` by default.
        per_account: The limit per account.
        per_address: The limit per client address.
        clock: Seconds since the epoch (`time.time`); every app instance sharing a
            backend must share the clock, so not `time.monotonic`. Tests pass a
            clock they move by hand.

    Raises:
        ConfigurationError: A value of the wrong type.

    Examples:
        >>> throttle = Throttle(per_account=FailureLimit(failures=3, window=timedelta(hours=1)))
        >>> throttle.per_address.failures
        50
    """

    backend: ThrottleBackend = field(default_factory=MemoryThrottle)
    per_account: FailureLimit = FailureLimit(failures=5, window=timedelta(minutes=15))
    per_address: FailureLimit = FailureLimit(failures=50, window=timedelta(minutes=15))
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        if not isinstance(self.backend, ThrottleBackend):
            raise ConfigurationError(
                detail=f"backend must implement ThrottleBackend, got {type(self.backend).__name__}"
            )
        for name in ("per_account", "per_address"):
            if not isinstance(getattr(self, name), FailureLimit):
                raise ConfigurationError(detail=f"{name} must be a FailureLimit")
        if not callable(self.clock):
            raise ConfigurationError(detail="clock must be a callable returning epoch seconds")

    def _refuse_if_throttled(self, keys: Iterable[tuple[str, FailureLimit]]) -> None:
        """`TooManyAttempts` with the longest wait when any of the keys is throttled."""
        now = self.clock()
        waits = [
            wait
            for key, limit in keys
            if (wait := self.backend.retry_after(key, limit=limit, now=now)) is not None
        ]
        if waits:
            raise TooManyAttempts(retry_after=max(waits))

    def _record_failure(self, keys: Iterable[tuple[str, FailureLimit]]) -> None:
        """Count one failure under each of the keys."""
        now = self.clock()
        for key, limit in keys:
            self.backend.record_failure(key, limit=limit, now=now)

    def _keys(self, email: str, client_address: str | None) -> Iterator[tuple[str, FailureLimit]]:
        yield _account_key(email), self.per_account
        if client_address is not None:
            yield _address_key(client_address), self.per_address

    def check(self, *, email: str, client_address: str | None) -> None:
        """Refuse the attempt if the account or the address is throttled; count nothing.

        Call it before verifying the password, so a throttled attempt costs no
        argon2 work.

        Args:
            email: The email as typed (normalised here).
            client_address: The client's IP address, or None when the app has none
                (then only the account limit applies).

        Raises:
            TooManyAttempts: Throttled; `retry_after` is the longer wait of the two.
            StoreUnavailable: The backend could not be reached.
            InvalidInput: `client_address` is an empty string.

        Examples:
            >>> Throttle().check(email="ann@example.com", client_address="2001:db8::1")
        """
        self._refuse_if_throttled(self._keys(email, client_address))

    def failed(self, *, email: str, client_address: str | None) -> None:
        """Count a failed sign-in (wrong password, unknown email) for both keys.

        Args:
            email: The email as typed.
            client_address: The client's IP address, or None.

        Raises:
            StoreUnavailable: The backend could not be reached.
            InvalidInput: `client_address` is an empty string.

        Examples:
            >>> one = FailureLimit(failures=1, window=timedelta(minutes=1))
            >>> throttle = Throttle(per_account=one)
            >>> throttle.failed(email="ann@example.com", client_address=None)
            >>> try:
            ...     throttle.check(email="ANN@example.com", client_address=None)
            ... except TooManyAttempts as error:
            ...     print(error)
            Too many failed attempts. Please try again in 1 minute.
        """
        self._record_failure(self._keys(email, client_address))

    def succeeded(self, *, email: str, client_address: str | None = None) -> None:
        """Forget the account's failures after a successful sign-in.

        The address's failures stay on purpose: otherwise someone with one valid
        account could clear their address's count by signing in to it between
        guesses at other accounts. `client_address` is accepted so the three calls
        read alike, and ignored.

        Args:
            email: The email as typed.
            client_address: Ignored.

        Raises:
            StoreUnavailable: The backend could not be reached.

        Examples:
            >>> one = FailureLimit(failures=1, window=timedelta(minutes=1))
            >>> throttle = Throttle(per_account=one)
            >>> throttle.failed(email="ann@example.com", client_address="203.0.113.9")
            >>> throttle.succeeded(email="ann@example.com", client_address="203.0.113.9")
            >>> throttle.check(email="ann@example.com", client_address="203.0.113.9")
        """
        del client_address
        self.backend.reset(_account_key(email))

    # Second factors: their own account bucket (a right password must not reset it),
    # the same address bucket as passwords.

    def _factor_keys(
        self, account_id: str, client_address: str | None
    ) -> Iterator[tuple[str, FailureLimit]]:
        yield _digest("second-factor", account_id), self.per_account
        if client_address is not None:
            yield _address_key(client_address), self.per_address

    def check_second_factor(self, *, account_id: str, client_address: str | None) -> None:
        """Refuse a second-factor attempt when the account or address is throttled.

        The account's second-factor failures are counted apart from its password
        failures, so a right password, which resets those, does not reset these.

        Raises:
            TooManyAttempts: Throttled.
            StoreUnavailable: The backend could not be reached.
        """
        self._refuse_if_throttled(self._factor_keys(account_id, client_address))

    def second_factor_failed(self, *, account_id: str, client_address: str | None) -> None:
        """Count a wrong code, recovery code or passkey answer.

        Raises:
            StoreUnavailable: The backend could not be reached.
        """
        self._record_failure(self._factor_keys(account_id, client_address))

    def second_factor_succeeded(self, *, account_id: str) -> None:
        """Forget the account's second-factor failures (not the address's).

        Raises:
            StoreUnavailable: The backend could not be reached.
        """
        self.backend.reset(_digest("second-factor", account_id))
