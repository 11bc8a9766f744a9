"""Replay defence: each (purpose, key) is accepted once, by every app instance together.

A sealed flow state is accepted once: `complete` consumes its OAuth `state` value
here before doing anything else, so a callback URL replayed (from the browser's
history, a log, a second tab) is refused even though the sealed state still opens.

`SingleUseGuard` is the Protocol; `MemoryGuard` keeps keys in this process (one app
process), `RedisGuard` in Redis and `StoreGuard` in the account store's
`consume_once` (`MemoryStore`, `SQLStore`), both shared by every app instance.

Every guard returns False for a key whose `expires_at` has already passed, and
records nothing: a dead value is refused outright, not "used for the first time".
Guards that cannot reach their storage raise `StoreUnavailable` (fail closed).

Examples:
    >>> from datetime import datetime, timedelta, timezone
    >>> guard = MemoryGuard()
    >>> until = datetime.now(timezone.utc) + timedelta(minutes=10)
    >>> guard.consume(purpose="flow_state", key="abc", expires_at=until)
    True
    >>> guard.consume(purpose="flow_state", key="abc", expires_at=until)
    False
    >>> guard.consume(purpose="invite", key="abc", expires_at=until)
    True
"""

from __future__ import annotations

import hashlib
import heapq
import math
import threading
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

from bpart_auth._redis import redis_client
from bpart_auth.errors import ConfigurationError, InvalidInput, StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    import redis

__all__ = ["MemoryGuard", "RedisGuard", "SingleUseGuard", "StoreGuard"]

_SWEEP_EVERY: Final = 64  # MemoryGuard looks for expired keys every this many calls


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _check(purpose: object, key: object, expires_at: object) -> None:
    for name, value in (("purpose", purpose), ("key", key)):
        if not isinstance(value, str) or not value:
            raise InvalidInput(field=name, detail=f"{name} must be a non-empty str")
    if not isinstance(expires_at, datetime) or expires_at.utcoffset() is None:
        raise InvalidInput(
            field="expires_at", detail="expires_at must be a timezone-aware datetime"
        )


def _check_clock(clock: object) -> None:
    if not callable(clock):
        raise ConfigurationError(detail="clock must be a callable returning an aware datetime")


@runtime_checkable
class SingleUseGuard(Protocol):
    """Remembers which (purpose, key) pairs were used, until they expire.

    Implementations must be atomic across every app instance that shares them: of
    any number of concurrent calls with the same (purpose, key), exactly one gets
    True. A guard whose storage is unreachable raises `StoreUnavailable`.
    """

    def consume(self, *, purpose: str, key: str, expires_at: datetime) -> bool:
        """True the first time (purpose, key) is seen, False after that.

        Args:
            purpose: What the key is for (`"flow_state"`), so kinds never collide.
            key: The value to accept once.
            expires_at: When the value dies; the record may be forgotten then. A
                key already past it gets False.
        """
        ...


class MemoryGuard:
    """Remembers used keys in this process: the default for one app process.

    Thread-safe; forgets keys once they expire. Each process has its own memory,
    so an app served by several processes needs `RedisGuard` or `StoreGuard`.

    Args:
        clock: Returns the current timezone-aware time.

    Examples:
        >>> from datetime import timedelta
        >>> now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        >>> guard = MemoryGuard(clock=lambda: now)
        >>> guard.consume(purpose="flow_state", key="k", expires_at=now - timedelta(seconds=1))
        False
    """

    __slots__ = ("_calls", "_clock", "_expiries", "_lock", "_used")

    def __init__(self, *, clock: Callable[[], datetime] = _utc_now) -> None:
        _check_clock(clock)
        self._clock = clock
        self._lock = threading.Lock()
        self._used: dict[tuple[str, str], datetime] = {}
        # (expires_at, purpose, key), soonest first; an entry is stale when the key
        # was used again after it expired, and then skipped.
        self._expiries: list[tuple[datetime, str, str]] = []
        self._calls = 0

    def consume(self, *, purpose: str, key: str, expires_at: datetime) -> bool:
        """See `SingleUseGuard.consume`."""
        _check(purpose, key, expires_at)
        now = self._clock()
        if expires_at <= now:
            return False
        with self._lock:
            self._calls += 1
            if self._calls % _SWEEP_EVERY == 0:
                self._sweep(now)
            used_until = self._used.get((purpose, key))
            if used_until is not None and used_until > now:
                return False
            self._used[purpose, key] = expires_at
            heapq.heappush(self._expiries, (expires_at, purpose, key))
            return True

    def __len__(self) -> int:
        """How many keys are remembered (expired ones until the next sweep)."""
        return len(self._used)

    def _sweep(self, now: datetime) -> None:
        while self._expiries and self._expiries[0][0] <= now:
            expires_at, purpose, key = heapq.heappop(self._expiries)
            if self._used.get((purpose, key)) == expires_at:
                del self._used[purpose, key]


class RedisGuard:
    """Remembers used keys in Redis, shared by every app instance on it.

    One `SET key 1 NX PX ttl` per call decides, so exactly one of any number of
    concurrent callers wins, and Redis forgets the key when it expires. The key is
    `prefix`, the purpose and a SHA-256 of (purpose, key), so the raw value is not
    stored. Needs the `redis` extra; `redis` is imported only when this class is
    constructed, and nothing connects until the first call.

    Args:
        client: A `redis.Redis` client, or a URL (`redis://host:6379/0`) to make one.
        prefix: Put before every key, to share a Redis database with other data.
        timeout: Connect and socket timeout, in seconds, of a client made from a URL.
        clock: Returns the current timezone-aware time (to turn `expires_at` into a
            time to live).

    Raises:
        ConfigurationError: The `redis` package is missing, or an argument is wrong.
        StoreUnavailable: (from `consume`) Redis could not be reached or failed.

    Examples:
        >>> guard = RedisGuard("redis://127.0.0.1:6379/0", prefix="myapp:once:")
        >>> guard.prefix
        'myapp:once:'
    """

    __slots__ = ("_client", "_clock", "_errors", "prefix")

    def __init__(
        self,
        client: redis.Redis | str,
        *,
        prefix: str = "bpart_auth:once:",
        timeout: float = 2.0,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client, self._errors = redis_client(
            client, timeout=timeout, prefix=prefix, owner="RedisGuard"
        )
        _check_clock(clock)
        self._clock = clock
        self.prefix = prefix

    def consume(self, *, purpose: str, key: str, expires_at: datetime) -> bool:
        """See `SingleUseGuard.consume`."""
        _check(purpose, key, expires_at)
        milliseconds = math.ceil((expires_at - self._clock()).total_seconds() * 1000)
        if milliseconds <= 0:
            return False
        digest = hashlib.sha256(f"{purpose}\x00{key}".encode("utf-8", "surrogatepass"))
        name = f"{self.prefix}{purpose}:{digest.hexdigest()[:32]}"
        try:
            return bool(self._client.set(name, b"1", nx=True, px=milliseconds))
        except self._errors as exc:
            raise StoreUnavailable(detail=f"Redis: {type(exc).__name__}: {exc}") from exc


class _ConsumesOnce(Protocol):
    def consume_once(
        self, *, purpose: str, key: str, expires_at: datetime, now: datetime
    ) -> bool: ...


class StoreGuard:
    """Remembers used keys in the account store (`MemoryStore`, `SQLStore`, yours).

    With `SQLStore`, one `INSERT ... ON CONFLICT` decides, so app instances sharing
    the database share the guard, with no extra service to run.

    Args:
        store: Any object with `consume_once(*, purpose, key, expires_at, now) -> bool`.
        clock: Returns the current timezone-aware time, passed on as `now`.

    Raises:
        ConfigurationError: `store` has no `consume_once` method.
        StoreUnavailable: (from `consume`) the store failed.

    Examples:
        >>> from datetime import timedelta
        >>> from bpart_auth import MemoryStore
        >>> guard = StoreGuard(MemoryStore())
        >>> until = datetime.now(timezone.utc) + timedelta(minutes=10)
        >>> [guard.consume(purpose="flow_state", key="k", expires_at=until) for _ in "ab"]
        [True, False]
    """

    __slots__ = ("_clock", "_store")

    def __init__(self, store: _ConsumesOnce, *, clock: Callable[[], datetime] = _utc_now) -> None:
        if not callable(getattr(store, "consume_once", None)):
            raise ConfigurationError(
                detail=f"{type(store).__name__} has no consume_once(*, purpose, key, "
                "expires_at, now) method"
            )
        _check_clock(clock)
        self._store = store
        self._clock = clock

    def consume(self, *, purpose: str, key: str, expires_at: datetime) -> bool:
        """See `SingleUseGuard.consume`."""
        _check(purpose, key, expires_at)
        now = self._clock()
        if expires_at <= now:
            return False
        return self._store.consume_once(purpose=purpose, key=key, expires_at=expires_at, now=now)
