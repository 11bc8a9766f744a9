"""`SQLThrottle`: failed sign-ins counted in the SQL store, shared by app instances."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import bindparam, delete, insert, select

from bpart_auth.store._engine import DirectRead
from bpart_auth.store._schema import THROTTLE_KEY_LENGTH, throttle_failures
from bpart_auth.store._sql_checks import checked

if TYPE_CHECKING:
    from bpart_auth._throttle import FailureLimit
    from bpart_auth.store.sql import SQLStore

_table = throttle_failures


class SQLThrottle:
    """A `ThrottleBackend` on `SQLStore`'s database: no Redis needed to share limits.

    One row per failure; each `record_failure` inserts its row and deletes the key's
    rows that left the window or are beyond the newest `limit.failures`, in one
    transaction, so the table stays small and concurrent failures all count.
    `retry_after`, run before every sign-in, is one SELECT outside any transaction,
    so checking never waits for SQLite's write lock. Errors of the database are
    `StoreUnavailable`: throttling fails closed.

    `Auth` uses one by default with a `SQLStore` (`SQLStore.throttle_backend()`).

    Args:
        store: The `SQLStore` whose database holds the counts (its schema has the
            `bpart_throttle_failures` table).

    Examples:
        >>> from datetime import timedelta
        >>> from bpart_auth import FailureLimit, SQLStore, Throttle
        >>> store = SQLStore("sqlite:///" + getfixture("tmp_path").as_posix() + "/t.db",
        ...                  create_schema=True)
        >>> throttle = Throttle(backend=SQLThrottle(store))
        >>> throttle.check(email="ann@example.com", client_address="192.0.2.1")
    """

    def __init__(self, store: SQLStore) -> None:
        self._store = store
        # The failure whose leaving the window frees the key: the `failures`-th newest.
        self._freeing = DirectRead.compile(
            select(_table.c.failed_at)
            .where(_table.c.key == bindparam("key"), _table.c.failed_at > bindparam("since"))
            .order_by(_table.c.failed_at.desc())
            .offset(bindparam("skip"))
            .limit(bindparam("one")),
            store._engine,  # noqa: SLF001 - same package
        )
        self._any = DirectRead.compile(
            # At most `failures` rows per key: `record_failure` deletes the rest.
            select(_table.c.id).where(_table.c.key == bindparam("key")),
            store._engine,  # noqa: SLF001 - same package
        )

    def retry_after(self, key: str, *, limit: FailureLimit, now: float) -> float | None:
        """See `ThrottleBackend.retry_after`."""
        key = checked(key, "key", THROTTLE_KEY_LENGTH)
        rows = self._store._read(  # noqa: SLF001 - same package
            self._freeing,
            key=key,
            since=now - limit.window_seconds,
            skip=limit.failures - 1,
            one=1,
        )
        return float(rows[0][0]) + limit.window_seconds - now if rows else None

    def record_failure(self, key: str, *, limit: FailureLimit, now: float) -> None:
        """See `ThrottleBackend.record_failure`."""
        key = checked(key, "key", THROTTLE_KEY_LENGTH)
        with self._store._transaction() as connection:  # noqa: SLF001 - same package
            connection.execute(insert(_table).values(key=key, failed_at=now))
            newest = (
                select(_table.c.id)
                .where(_table.c.key == key)
                .order_by(_table.c.failed_at.desc(), _table.c.id.desc())
                .limit(limit.failures)
                .subquery()
            )
            connection.execute(
                delete(_table).where(
                    _table.c.key == key,
                    (_table.c.failed_at <= now - limit.window_seconds)
                    | _table.c.id.not_in(select(newest.c.id)),
                )
            )

    def reset(self, key: str) -> None:
        """See `ThrottleBackend.reset`."""
        key = checked(key, "key", THROTTLE_KEY_LENGTH)
        # Every successful sign-in resets its account, which almost never has failures:
        # look first, so the usual case is one read instead of a write transaction.
        if not self._store._read(self._any, key=key):  # noqa: SLF001 - same package
            return
        with self._store._transaction() as connection:  # noqa: SLF001 - same package
            connection.execute(delete(_table).where(_table.c.key == key))
