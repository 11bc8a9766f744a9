"""How `SQLStore` talks to its database: engine, transactions, errors, fast reads.

Connections run in the driver's autocommit mode on both backends, and the store
opens every write transaction itself:

- SQLite: `BEGIN IMMEDIATE` takes the write lock up front. A deferred `BEGIN` would
  read first and upgrade later, and two writers upgrading at once get `SQLITE_BUSY`
  at once, whatever the busy timeout. pysqlite's own transaction handling is turned
  off (`isolation_level = None`, which means the same on Python 3.10 to 3.13), as the
  SQLAlchemy documentation recommends for pysqlite ("Serializable isolation /
  Savepoints / Transactional DDL"). Every connection also gets WAL (readers never
  block the writer, several processes share the file), a busy timeout and foreign
  keys.
- PostgreSQL: `BEGIN` at READ COMMITTED; every single-use consumption is a
  conditional UPDATE or DELETE whose row count says who won.

A single SELECT needs no transaction, so reads skip `BEGIN`/`ROLLBACK` entirely:
`DirectRead` compiles a Core statement once and runs it on a pooled DBAPI connection,
which keeps lookups within a small factor of the raw driver (see bench/bench_store.py).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, cast

from sqlalchemy import create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from bpart_auth.errors import AuthError, ConfigurationError, StoreUnavailable

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.sql.compiler import SQLCompiler
    from sqlalchemy.sql.expression import ClauseElement, Select

SQLITE_BUSY_TIMEOUT: Final = 10.0
"""Seconds a SQLite connection waits for the write lock before giving up."""

POSTGRESQL_POOL: Final[Mapping[str, Any]] = {
    # 50 threads at once (the contract kit's races) get a connection each without
    # waiting; PostgreSQL's default max_connections is 100.
    "pool_size": 10,
    "max_overflow": 40,
    "pool_timeout": 30,
    # Recycle before common idle-connection killers (firewalls, PgBouncer) strike.
    "pool_recycle": 1800,
}

URL_FORMS: Final = (
    "sqlite:///path/to/file.db",
    "postgresql://user:password@host:5432/database",
    "postgresql+psycopg://...",
    "postgres://...",
)
"""The URL forms `SQLStore` takes, for error details and the CLI."""

_DRIVERS: Final[Mapping[str, str]] = {
    # The scheme as given (lowercased: RFC 3986 schemes are case-insensitive) -> the
    # SQLAlchemy drivername we use. postgres:// is what Heroku and many hosts hand out;
    # SQLAlchemy 1.4 dropped that alias, so it is mapped here.
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgres+psycopg": "postgresql+psycopg",
}


def _forms() -> str:
    return "supported: " + ", ".join(URL_FORMS)


def parse_store_url(url: object) -> URL:
    """`url` parsed, with its scheme mapped to the driver we use; connects to nothing.

    Raises:
        ConfigurationError: `url` is not a str, not a URL, or has a scheme other than
            those in `URL_FORMS`. `detail` names the supported forms and never
            repeats the URL (it may hold a password).
    """
    if not isinstance(url, str):
        raise ConfigurationError(
            detail=f"SQLStore: the URL must be a str, not {type(url).__name__}; {_forms()}"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(detail=f"SQLStore: not a database URL; {_forms()}") from exc
    drivername = _DRIVERS.get(parsed.drivername.lower())
    if drivername is None:
        raise ConfigurationError(
            detail=f"SQLStore: unsupported URL scheme {parsed.drivername + '://'!r}; {_forms()}"
        )
    return parsed.set(drivername=drivername)


def create_store_engine(url: object, options: Mapping[str, Any] | None) -> Engine:
    """A SQLAlchemy engine for `url` set up as described above; connects to nothing.

    Raises:
        ConfigurationError: The URL is refused (see `parse_store_url`), names an
            in-memory SQLite database, the driver is not installed, or an option is
            wrong.
    """
    parsed = parse_store_url(url)
    settings, connect_args = _defaults(parsed)
    given = dict(options or {})
    if "poolclass" in given or "pool" in given:  # their pool, their sizes
        for key in POSTGRESQL_POOL:
            settings.pop(key, None)
    connect_args.update(given.pop("connect_args", {}))
    settings.update(given)
    try:
        engine = create_engine(parsed, connect_args=connect_args, **settings)
    except (ArgumentError, NoSuchModuleError, ImportError, TypeError, ValueError) as exc:
        raise ConfigurationError(detail=f"SQLStore: {type(exc).__name__}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _defaults(url: URL) -> tuple[dict[str, Any], dict[str, Any]]:
    """Our `create_engine` settings and driver `connect_args` for this URL."""
    settings: dict[str, Any] = {"hide_parameters": True}  # no hashes in logs or errors
    if url.get_backend_name() == "sqlite":
        if url.database in (None, "", ":memory:") or url.query.get("mode") == "memory":
            raise ConfigurationError(
                detail="SQLStore needs a SQLite file: an in-memory database lives in one "
                "connection. Use MemoryStore, or sqlite:///path/to/file.db"
            )
        return settings, {"timeout": SQLITE_BUSY_TIMEOUT}
    settings.update(POSTGRESQL_POOL, isolation_level="AUTOCOMMIT")
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    return settings, connect_args


_WAL_RETRY_PAUSE = 0.05


def _configure_sqlite_connection(dbapi_connection: Any, _record: object) -> None:  # noqa: ANN401 - a sqlite3.Connection
    # The store emits BEGIN IMMEDIATE itself; pysqlite must not emit its own BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        _use_wal(cursor)
        # WAL + NORMAL: a commit is atomic and the file never corrupts; only a power
        # loss may drop the last commits. FULL would fsync every commit, ~1 ms each
        # (the SQLite docs' advice for WAL; Rails 8 ships the same default).
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:  # noqa: ANN401 - a sqlite3.Cursor
    """Switch the file to WAL (persistent, so only the first connection converts it).

    The switch needs an exclusive lock and SQLite answers SQLITE_BUSY at once, not
    after the busy timeout, when another connection is converting the file at the
    same moment; so retry for up to the busy timeout.
    """
    attempts = int(SQLITE_BUSY_TIMEOUT / _WAL_RETRY_PAUSE)
    for attempt in range(attempts):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as exc:  # noqa: PERF203 - a retry loop, run once per connection
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if attempt == attempts - 1:
                raise
            time.sleep(_WAL_RETRY_PAUSE)
        else:
            return


@contextlib.contextmanager
def translated_errors(engine: Engine) -> Iterator[None]:
    """Let our errors through; turn every SQLAlchemy or driver error into `StoreUnavailable`.

    Driver errors raised outside SQLAlchemy's wrapping (a pool checkout, a connect
    event) are caught too, so no `sqlite3` or `psycopg` error reaches the caller.
    """
    try:
        yield
    except AuthError:
        raise
    except (SQLAlchemyError, engine.dialect.loaded_dbapi.Error) as exc:
        raise unavailable(exc, engine) from exc


def unavailable(error: BaseException, engine: Engine) -> StoreUnavailable:
    """The `StoreUnavailable` for a database error, its `detail` from `describe`."""
    return StoreUnavailable(detail=describe(error, password=engine.url.password))


def describe(error: BaseException, *, password: str | None = None) -> str:
    """A one-line, parameter-free account of a database error for `detail`.

    Host names and ports stay in (whoever reads the logs needs them to find the
    server; `detail` never reaches `str(error)`); `password`, should the driver ever
    echo it, is masked.
    """
    if isinstance(error, DBAPIError) and error.orig is not None:
        error = error.orig
    first_line = str(error).strip().splitlines()[:1]
    text = f"{type(error).__name__}: {first_line[0] if first_line else ''}".rstrip(": ")
    return text.replace(password, "***") if password else text


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    with engine.connect() as connection:
        connection.exec_driver_sql(
            "BEGIN IMMEDIATE" if engine.dialect.name == "sqlite" else "BEGIN"
        )
        try:
            yield connection
        except BaseException:
            # A dead connection cannot roll back; the pool discards it (and resets
            # any connection it gets back) anyway, so keep the original error.
            with contextlib.suppress(SQLAlchemyError):
                connection.exec_driver_sql("ROLLBACK")
            raise
        connection.exec_driver_sql("COMMIT")


@dataclass(frozen=True, slots=True)
class DirectRead:
    """A SELECT compiled once for one dialect: its SQL and how to order parameters."""

    sql: str
    positions: tuple[str, ...] | None

    @classmethod
    def compile(cls, statement: Select[Any] | ClauseElement, engine: Engine) -> DirectRead:
        """Compile `statement` (with named `bindparam`s) for `engine`'s dialect."""
        compiled = cast("SQLCompiler", statement.compile(dialect=engine.dialect))
        positions = tuple(compiled.positiontup or ()) if compiled.positional else None
        return cls(compiled.string, positions)

    def parameters(self, values: Mapping[str, object]) -> Any:  # noqa: ANN401 - tuple or mapping, by paramstyle
        """The parameters in the form the driver's paramstyle wants."""
        if self.positions is None:
            return values
        return [values[name] for name in self.positions]


def fetch(engine: Engine, query: DirectRead, values: Mapping[str, object]) -> Sequence[Any]:
    """Run a `DirectRead` on a pooled DBAPI connection; every row, as the driver gives it.

    The hot read path: plain try/except and no context manager (on Python 3.11+ a try
    costs nothing until something raises).

    Raises:
        StoreUnavailable: The database could not be reached or failed; a dropped
            connection is discarded.
    """
    try:
        # The pool raises the driver's own error (or a pool timeout) when it has to
        # open a connection and cannot: the database is down, gone or misnamed.
        connection = engine.pool.connect()
    except (engine.dialect.loaded_dbapi.Error, SQLAlchemyError) as exc:
        raise unavailable(exc, engine) from exc
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(query.sql, query.parameters(values))
            return cursor.fetchall()
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, connection.dbapi_connection, cursor):
                connection.invalidate(exc)
            raise unavailable(exc, engine) from exc
        finally:
            cursor.close()
    except engine.dialect.loaded_dbapi.Error as exc:  # cursor() on a dead connection
        connection.invalidate(exc)
        raise unavailable(exc, engine) from exc
    finally:
        connection.close()


def execute(engine: Engine, query: DirectRead, values: Mapping[str, object]) -> int:
    """Run one statement of a `DirectRead` shape (an INSERT, a DELETE); its row count.

    The connection is in autocommit mode, so the statement is its own transaction:
    one round trip, no `BEGIN`/`COMMIT`. For a single statement that decides on
    its own (`INSERT ... ON CONFLICT`), that is as atomic as a transaction.

    Raises:
        StoreUnavailable: The database could not be reached or failed; a dropped
            connection is discarded.
    """
    try:
        connection = engine.pool.connect()
    except (engine.dialect.loaded_dbapi.Error, SQLAlchemyError) as exc:
        raise unavailable(exc, engine) from exc
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(query.sql, query.parameters(values))
            return int(cursor.rowcount)
        except engine.dialect.loaded_dbapi.Error as exc:
            if engine.dialect.is_disconnect(exc, connection.dbapi_connection, cursor):
                connection.invalidate(exc)
            raise unavailable(exc, engine) from exc
        finally:
            cursor.close()
    except engine.dialect.loaded_dbapi.Error as exc:  # cursor() on a dead connection
        connection.invalidate(exc)
        raise unavailable(exc, engine) from exc
    finally:
        connection.close()
