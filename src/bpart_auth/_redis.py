"""The Redis client the Redis-backed helpers share: made once, the same way."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bpart_auth.errors import ConfigurationError

if TYPE_CHECKING:
    import redis


def redis_client(
    client: redis.Redis | str, *, timeout: float, prefix: object, owner: str
) -> tuple[redis.Redis, type[Exception]]:
    """A `redis.Redis` from a client or a URL, and redis' base error class.

    `redis` is imported here, only when a Redis helper is built, so that
    `import bpart_auth` never imports it.

    Raises:
        ConfigurationError: redis is not installed, the URL is malformed, `client`
            is neither, or `prefix` is not a non-empty str.
    """
    try:
        import redis  # noqa: PLC0415 - optional dependency, only when used
    except ImportError as exc:
        raise ConfigurationError(
            detail=f"{owner} needs the redis package: pip install 'bpart-auth[redis]'"
        ) from exc
    if not isinstance(prefix, str) or not prefix:
        raise ConfigurationError(detail=f"{owner}: prefix must be a non-empty str")
    if isinstance(client, str):
        try:
            client = redis.Redis.from_url(
                client, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        except ValueError as exc:
            raise ConfigurationError(detail=f"{owner}: not a Redis URL: {exc}") from exc
    elif not isinstance(client, redis.Redis):
        raise ConfigurationError(
            detail=f"{owner}: client must be a redis.Redis or a URL, got {type(client).__name__}"
        )
    return client, redis.RedisError
