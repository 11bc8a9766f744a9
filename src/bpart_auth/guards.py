"""Single-use guards: each (purpose, key) is accepted once, by every app instance.

`Auth(single_use=...)` takes one. By default `Auth` uses the store itself when it can
(`StoreGuard` over `SQLStore` or `MemoryStore`), so an app rarely builds one; give
`RedisGuard` when the app's instances share a Redis but not a store that keeps them.

- `SingleUseGuard`: the Protocol (one method, `consume`), for a guard of your own.
- `MemoryGuard`: in this process only (one app process, tests).
- `StoreGuard`: in the account store's `consume_once` (`SQLStore`, `MemoryStore`).
- `RedisGuard`: in Redis (the `redis` extra), shared by every app instance.

Examples:
    >>> from bpart_auth import Auth, MemoryStore
    >>> from bpart_auth.guards import MemoryGuard
    >>> auth = Auth(MemoryStore(), single_use=MemoryGuard())
"""

from bpart_auth._single_use import MemoryGuard, RedisGuard, SingleUseGuard, StoreGuard

__all__ = ["MemoryGuard", "RedisGuard", "SingleUseGuard", "StoreGuard"]
