"""Limits on failed sign-ins (`Throttle`) and where failures are counted (backends).

`Auth(throttle=...)` takes a `Throttle`. By default `Auth` counts in the store when it
can (`SQLStore.throttle_backend()`, a `SQLThrottle`), else in this process. Give a
`Throttle` for other limits, or on `RedisThrottle` to share the counts through Redis.

- `Throttle`, `FailureLimit`: the policy (also importable from `bpart_auth`).
- `ThrottleBackend`: the Protocol, for a backend of your own.
- `MemoryThrottle`: in this process only.
- `RedisThrottle`: in Redis (the `redis` extra), shared by every app instance.
- `SQLThrottle`: in the SQL store (the `sqlite` or `postgres` extra), loaded on first use.

Examples:
    >>> from datetime import timedelta
    >>> from bpart_auth import Auth, MemoryStore
    >>> from bpart_auth.throttling import FailureLimit, MemoryThrottle, Throttle
    >>> throttle = Throttle(
    ...     per_account=FailureLimit(failures=3, window=timedelta(minutes=15)),
    ...     backend=MemoryThrottle(),
    ... )
    >>> auth = Auth(MemoryStore(), throttle=throttle)
"""

import typing

from bpart_auth._throttle import (
    FailureLimit,
    MemoryThrottle,
    RedisThrottle,
    Throttle,
    ThrottleBackend,
)

if typing.TYPE_CHECKING:
    from bpart_auth.store._sql_throttle import SQLThrottle

__all__ = [
    "FailureLimit",
    "MemoryThrottle",
    "RedisThrottle",
    "SQLThrottle",
    "Throttle",
    "ThrottleBackend",
]


def __getattr__(name: str) -> typing.Any:  # noqa: ANN401 - module attributes of any kind
    # SQLThrottle needs the `sqlite` or `postgres` extra: loaded on first use, like
    # `bpart_auth.SQLStore`.
    if name == "SQLThrottle":
        from bpart_auth.store._sql_throttle import SQLThrottle  # noqa: PLC0415

        return SQLThrottle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
