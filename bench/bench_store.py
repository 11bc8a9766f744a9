"""SQLStore lookups (by email, by identity) against the raw driver, and as data grows.

First, `MemoryStore.consume_once` (the single-use guard of an app on the memory store)
with the largest size of live keys against 1k: flat (target <= 2, what a plain
dict's cache misses at 1M cost).

For each backend (a SQLite file in a temporary folder; PostgreSQL when it answers) and
each size (quick: 1k and 10k accounts; full: 1k, 100k and 1M), the store's schema is
created with `SQLStore.upgrade_schema()`, filled fast in one transaction (executemany
for SQLite, COPY for PostgreSQL), and each lookup is timed against the same SELECT run
on a raw driver connection (`sqlite3`; psycopg with a prepared statement). Every call
looks up the next of 1,000 random existing keys, so the B-tree is walked, not one row.

Then, per backend, the store at the largest size against the store at 1k: the
lookups should stay flat (target <= 1.5).
"""

from __future__ import annotations

import contextlib
import itertools
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import _postgres as _postgres_db
from bench._harness import Case, Scale, Skipped
from bpart_auth import Identity, MemoryStore
from bpart_auth._email import normalize_email
from bpart_auth.store._schema import dump_time
from bpart_auth.store.sql import SQLStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
NOW = datetime(2026, 11, 26, 9, 30, 15, 123456, tzinfo=timezone.utc)
KEYS = 1000

ACCOUNT = (
    "a.id, a.email, a.name, a.password_hash, a.disabled, a.created_at, a.credentials_changed_at"
)
# Constants only, no user input: S608 does not apply.
BY_EMAIL = f"SELECT {ACCOUNT} FROM bpart_accounts a WHERE a.email = {{p}}"  # noqa: S608
BY_IDENTITY = (
    f"SELECT {ACCOUNT} FROM bpart_identities i JOIN bpart_accounts a ON a.id = i.account_id "  # noqa: S608
    "WHERE i.provider = {p} AND i.issuer = {p} AND i.subject = {p}"
)


def _label(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


def _rows(size: int, dialect: str) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """(account row, identity row) pairs in column order."""
    stamp = dump_time(NOW, dialect)
    disabled: Any = 0 if dialect == "sqlite" else False
    for index in range(size):
        account_id = str(uuid.UUID(int=random.getrandbits(128), version=4))
        yield (
            (account_id, f"user{index}@example.com", "User", HASH, disabled, stamp, stamp),
            ("microsoft", TENANT, f"oid-{index}", account_id, None, stamp),
        )


ACCOUNT_INSERT = (
    "bpart_accounts (id, email, name, password_hash, disabled, created_at, credentials_changed_at)"
)
IDENTITY_INSERT = "bpart_identities (provider, issuer, subject, account_id, email, linked_at)"


def _fill_sqlite(path: Path, size: int) -> None:
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN")
        pairs = list(_rows(size, "sqlite"))
        accounts = f"INSERT INTO {ACCOUNT_INSERT} VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
        identities = f"INSERT INTO {IDENTITY_INSERT} VALUES (?, ?, ?, ?, ?, ?)"  # noqa: S608
        connection.executemany(accounts, [a for a, _ in pairs])
        connection.executemany(identities, [i for _, i in pairs])
        connection.execute("COMMIT")
        connection.execute("ANALYZE")
    finally:
        connection.close()


def _fill_postgres(connect: Callable[[], Any], size: int) -> None:
    with connect() as connection, connection.cursor() as cursor:
        pairs = list(_rows(size, "postgresql"))
        with connection.transaction():
            with cursor.copy(f"COPY {ACCOUNT_INSERT} FROM STDIN") as copy:
                for account, _ in pairs:
                    copy.write_row(account)
            with cursor.copy(f"COPY {IDENTITY_INSERT} FROM STDIN") as copy:
                for _, identity in pairs:
                    copy.write_row(identity)
        cursor.execute("ANALYZE bpart_accounts")
        cursor.execute("ANALYZE bpart_identities")


def _lookups(
    size: int,
) -> tuple[Callable[[], tuple[str, ...]], Callable[[], tuple[str, str, str]]]:
    """Endless cycles over the same random sample of existing emails and identities."""
    sample = random.Random(size).sample(range(size), min(KEYS, size))
    emails = itertools.cycle([f"user{i}@example.com" for i in sample])
    subjects = itertools.cycle([("microsoft", TENANT, f"oid-{i}") for i in sample])
    return (lambda: (next(emails),)), (lambda: next(subjects))


def _cases(
    backend: str,
    size: int,
    store: SQLStore,
    execute: Callable[[str, tuple[Any, ...]], object],
    placeholder: str,
) -> Iterator[Case]:
    group = f"store-{backend}"
    store_email, raw_email = _lookups(size)[0], _lookups(size)[0]
    store_identity, raw_identity = _lookups(size)[1], _lookups(size)[1]
    by_email = BY_EMAIL.format(p=placeholder)
    by_identity = BY_IDENTITY.format(p=placeholder)
    yield Case(
        group=group,
        name=f"find_account_by_email, {_label(size)} accounts",
        subject=lambda: store.find_account_by_email(store_email()[0]),
        baseline_name=f"raw {backend} driver",
        baseline=lambda: execute(by_email, raw_email()),
        high=4,
        note="includes normalize_email (IDNA), which the raw driver skips",
    )
    normalized_email = _lookups(size)[0]
    yield Case(
        group=group,
        name=f"find_account_by_email, {_label(size)} accounts",
        subject=lambda: store.find_account_by_email(store_email()[0]),
        baseline_name="normalize_email + raw",
        baseline=lambda: execute(by_email, (normalize_email(normalized_email()[0]),)),
        high=4,
    )
    yield Case(
        group=group,
        name=f"find_account_by_identity, {_label(size)} accounts",
        subject=lambda: store.find_account_by_identity(Identity(*store_identity())),
        baseline_name=f"raw {backend} driver",
        baseline=lambda: execute(by_identity, raw_identity()),
        high=4,
    )


def _flat(backend: str, small: SQLStore, large: SQLStore, size: int) -> Iterator[Case]:
    small_email, large_email = _lookups(1000)[0], _lookups(size)[0]
    small_identity, large_identity = _lookups(1000)[1], _lookups(size)[1]
    yield Case(
        group=f"store-{backend}",
        name=f"find_account_by_email, {_label(size)} vs 1k accounts",
        subject=lambda: large.find_account_by_email(large_email()[0]),
        baseline_name="SQLStore at 1k",
        baseline=lambda: small.find_account_by_email(small_email()[0]),
        high=1.5,
    )
    yield Case(
        group=f"store-{backend}",
        name=f"find_account_by_identity, {_label(size)} vs 1k accounts",
        subject=lambda: large.find_account_by_identity(Identity(*large_identity())),
        baseline_name="SQLStore at 1k",
        baseline=lambda: small.find_account_by_identity(Identity(*small_identity())),
        high=1.5,
    )


def _sqlite(sizes: list[int]) -> Iterator[Case]:
    with tempfile.TemporaryDirectory(prefix="bpart-bench-") as folder:
        stores: dict[int, SQLStore] = {}
        raw: list[sqlite3.Connection] = []
        try:
            for size in sizes:
                path = Path(folder) / f"auth-{size}.db"
                store = stores[size] = SQLStore(f"sqlite:///{path}")
                store.upgrade_schema()
                started = time.perf_counter()
                _fill_sqlite(path, size)
                _note(f"sqlite: {size:,} accounts loaded in {time.perf_counter() - started:.1f} s")
                connection = sqlite3.connect(path, check_same_thread=False)
                raw.append(connection)

                def execute(
                    sql: str, values: tuple[Any, ...], c: sqlite3.Connection = connection
                ) -> object:
                    return c.execute(sql, values).fetchone()

                yield from _cases("sqlite", size, store, execute, "?")
            yield from _flat("sqlite", stores[sizes[0]], stores[sizes[-1]], sizes[-1])
        finally:
            for connection in raw:
                connection.close()
            for store in stores.values():
                store.close()


def _postgres(sizes: list[int]) -> Iterator[Case | Skipped]:
    reason = _postgres_db.unavailable()
    if reason is not None:
        yield Skipped(group="store-postgresql", name="every lookup", reason=reason)
        return
    import psycopg  # noqa: PLC0415 - only when PostgreSQL is benchmarked

    with contextlib.ExitStack() as stack:
        stores: dict[int, SQLStore] = {}
        for size in sizes:
            options = stack.enter_context(_postgres_db.schema(f"store_{_label(size).lower()}"))
            store = stores[size] = _postgres_db.store(options)
            stack.callback(store.close)

            def connect(options: str = options) -> Any:  # noqa: ANN401 - a psycopg connection
                return psycopg.connect(_postgres_db.LIBPQ_URL, options=options)

            started = time.perf_counter()
            _fill_postgres(connect, size)
            _note(f"postgresql: {size:,} accounts loaded in {time.perf_counter() - started:.1f} s")
            connection = stack.enter_context(
                psycopg.connect(_postgres_db.LIBPQ_URL, options=options, autocommit=True)
            )

            def execute(
                sql: str, values: tuple[Any, ...], c: psycopg.Connection[Any] = connection
            ) -> object:
                return c.execute(sql, values, prepare=True).fetchone()

            yield from _cases("postgresql", size, store, execute, "%s")
        yield from _flat("postgresql", stores[sizes[0]], stores[sizes[-1]], sizes[-1])


def _memory_consume(size: int) -> Callable[[], object]:
    """`MemoryStore.consume_once` on a store holding `size` live keys, in steady state.

    The keys' expiries are spread over a ten-minute window and the clock moves on by
    one key's worth per call, so each call adds one key and one older key expires:
    what a busy app's single-use guard sees.
    """
    store = MemoryStore()
    window = timedelta(minutes=10)
    step = window / size
    for number in range(size):
        store.consume_once(
            purpose="flow_state", key=f"k{number}", expires_at=NOW + step * number, now=NOW
        )
    counter = itertools.count(size)

    def consume() -> object:
        number = next(counter)
        now = NOW + step * (number - size)
        return store.consume_once(
            purpose="flow_state", key=f"k{number}", expires_at=now + window, now=now
        )

    return consume


def _memory(sizes: list[int]) -> Iterator[Case]:
    large = sizes[-1]
    yield Case(
        group="store-memory",
        name=f"MemoryStore.consume_once, {_label(large)} vs 1k live keys",
        subject=_memory_consume(large),
        baseline_name="MemoryStore at 1k",
        baseline=_memory_consume(1000),
        # Flat means no per-call work that grows with the keys held (the old sweep of
        # every key cost 257 us a call at 1M); a 1M-entry dict still misses the CPU
        # caches where a 1k one does not, about 2x for a plain dict alone.
        high=2.0,
        note="a new key per call while an old one expires",
    )


def _note(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def benchmarks(scale: Scale) -> Iterator[Case | Skipped]:
    sizes = [1_000, 10_000] if scale == "quick" else [1_000, 100_000, 1_000_000]
    yield from _memory(sizes)
    yield from _sqlite(sizes)
    yield from _postgres(sizes)
