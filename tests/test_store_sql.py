"""SQLStore: the contract kit on a SQLite file and on PostgreSQL, then what only SQL has.

PostgreSQL tests run against BPART_AUTH_TEST_POSTGRES_URL (default 127.0.0.1:5432/test),
each in a fresh schema of its own (`search_path`), dropped afterwards.
"""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bpart_auth import Identity, errors
from bpart_auth.store import AccountStore, _schema, _writes
from bpart_auth.store import sql as sql_module
from bpart_auth.store._migrations import SCHEMA_VERSION, STEPS, upgrade
from bpart_auth.store.sql import SQLStore
from bpart_auth.testing import StoreContract
from bpart_auth.testing.store_contract import (
    HASH,
    LATER,
    NOW,
    OTHER_HASH,
    WEEK,
    SecondFactorContract,
    google,
    microsoft,
    race,
    token_hash,
)
from conftest import CLOSED_PORT_URL, POSTGRES_URL


@pytest.fixture
def store(database) -> SQLStore:
    return database.store(create_schema=True)


# The contract kit


class TestSQLiteFile(StoreContract):
    @pytest.fixture
    def store(self, sqlite_db):
        return sqlite_db.store(create_schema=True)


@pytest.mark.postgres
class TestPostgreSQL(StoreContract):
    @pytest.fixture
    def store(self, postgresql_db):
        return postgresql_db.store(create_schema=True)


class TestSQLiteFileSecondFactors(SecondFactorContract):
    @pytest.fixture
    def store(self, sqlite_db):
        return sqlite_db.store(create_schema=True)


@pytest.mark.postgres
class TestPostgreSQLSecondFactors(SecondFactorContract):
    @pytest.fixture
    def store(self, postgresql_db):
        return postgresql_db.store(create_schema=True)


def test_sql_store_satisfies_the_protocol(store):
    assert isinstance(store, AccountStore)


# Construction and configuration


def test_constructing_connects_to_nothing(tmp_path):
    SQLStore(CLOSED_PORT_URL)
    SQLStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("not a url", id="malformed"),
        pytest.param("mysql://user@host/db", id="unsupported-database"),
        pytest.param("postgresql+psycopg2://user@host/db", id="unsupported-driver"),
        pytest.param("sqlite://", id="sqlite-memory"),
        pytest.param("sqlite:///:memory:", id="sqlite-memory-named"),
        pytest.param("sqlite:///file:auth?mode=memory&cache=shared&uri=true", id="shared-memory"),
    ],
)
def test_bad_urls_are_configuration_errors(url):
    with pytest.raises(errors.ConfigurationError) as caught:
        SQLStore(url)
    assert caught.value.code == "configuration_error"
    assert caught.value.detail


def test_missing_driver_is_a_configuration_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(errors.ConfigurationError) as caught:
        SQLStore(POSTGRES_URL)
    assert caught.value.detail
    assert isinstance(caught.value.__cause__, ImportError)


def test_bad_engine_option_is_a_configuration_error(tmp_path):
    with pytest.raises(errors.ConfigurationError):
        SQLStore(f"sqlite:///{tmp_path / 'a.db'}", engine_options={"no_such_option": 1})


def test_repr_hides_the_password():
    store = SQLStore("postgresql+psycopg://ann:s3cret@db.example.com/auth")
    assert "s3cret" not in repr(store)
    assert "db.example.com" in repr(store)


def test_postgresql_means_psycopg_with_a_pool_for_fifty_threads():
    store = SQLStore("postgresql://ann@db.example.com/auth")
    assert store._engine.dialect.driver == "psycopg"
    assert store._engine.pool.size() + store._engine.pool._max_overflow >= 50
    smaller = SQLStore(POSTGRES_URL, engine_options={"pool_size": 2, "max_overflow": 0})
    assert (smaller._engine.pool.size(), smaller._engine.pool._max_overflow) == (2, 0)


# SQLite: WAL, busy timeout, BEGIN IMMEDIATE, several processes


def test_every_sqlite_connection_gets_wal_busy_timeout_and_foreign_keys(sqlite_db):
    store = sqlite_db.store(create_schema=True)
    store.upgrade_schema()
    with store._engine.connect() as first, store._engine.connect() as second:
        for connection in (first, second):
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            # pysqlite emits no BEGIN of its own: the store emits BEGIN IMMEDIATE.
            assert connection.connection.driver_connection.isolation_level is None


def _hold_write_lock(path, seconds: float) -> threading.Thread:
    """Another connection (as another process would) holds the write lock a while."""
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")

    def release():
        time.sleep(seconds)
        blocker.execute("COMMIT")
        blocker.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_writer_waits_for_the_write_lock(sqlite_db, tmp_path):
    store = sqlite_db.store()
    store.upgrade_schema()
    holder = _hold_write_lock(tmp_path / "auth.db", 0.5)
    started = time.monotonic()
    account = store.create_account(email="ann@example.com", name="", password_hash=None, now=NOW)
    holder.join()
    assert time.monotonic() - started >= 0.4
    assert store.get_account(account.id) == account


def test_a_lock_held_past_the_busy_timeout_is_store_unavailable(sqlite_db, tmp_path):
    sqlite_db.options = {"connect_args": {"timeout": 0.1}}
    store = sqlite_db.store()
    store.upgrade_schema()
    holder = _hold_write_lock(tmp_path / "auth.db", 1.0)
    with pytest.raises(errors.StoreUnavailable) as caught:
        store.create_account(email="ann@example.com", name="", password_hash=None, now=NOW)
    holder.join()
    assert "locked" in caught.value.detail
    assert store.find_account_by_email("ann@example.com") is None


def test_read_then_write_transactions_do_not_fail_busy(sqlite_db):
    # A deferred BEGIN would make these SELECT-then-DELETE transactions upgrade their
    # read lock, and all but one would fail with SQLITE_BUSY at once.
    store = sqlite_db.store(create_schema=True)
    accounts = [
        store.create_account(email=f"u{i}@example.com", name="", password_hash=None, now=NOW)
        for i in range(30)
    ]
    for i, account in enumerate(accounts):
        store.add_reset_token(
            account_id=account.id, token_hash=token_hash(f"r{i}"), expires_at=LATER, now=NOW
        )
    outcomes = race(
        30,
        lambda i: store.complete_reset(token_hash=token_hash(f"r{i}"), password_hash=HASH, now=NOW),
    )
    assert [o.id for o in outcomes] == [a.id for a in accounts]


CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from bpart_auth.store.sql import SQLStore

    store = SQLStore(sys.argv[1])
    now = datetime.now(timezone.utc)
    for i in range(int(sys.argv[3])):
        store.create_account(email=f"{sys.argv[2]}{i}@example.com", name="",
                             password_hash=None, now=now)
    print(store.find_account_by_email("parent@example.com") is not None)
    """
)


def test_processes_share_a_sqlite_file(sqlite_db):
    store = sqlite_db.store(create_schema=True)
    store.create_account(email="parent@example.com", name="", password_hash=None, now=NOW)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, sqlite_db.url, f"child{n}-", "40"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    second = sqlite_db.store()  # a second store in this process, too
    for i in range(40):
        second.create_account(email=f"parent{i}@example.com", name="", password_hash=None, now=NOW)
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        assert out.strip() == "True"
    for email in ("child0-39@example.com", "child1-0@example.com", "parent39@example.com"):
        assert store.find_account_by_email(email) is not None
    assert _count(store, _schema.accounts) == 121


# Schema migrations


def _count(store: SQLStore, table) -> int:
    with store._engine.connect() as connection:
        return len(connection.execute(select(table)).all())


def _versions(store: SQLStore) -> list[int]:
    with store._engine.connect() as connection:
        rows = connection.execute(select(_schema.schema_versions.c.version)).all()
    return sorted(version for (version,) in rows)


def test_a_store_without_its_schema_says_how_to_create_it(database):
    store = database.store()
    assert store.schema_version() == 0
    for call in (
        lambda: store.get_account(str(uuid.uuid4())),
        lambda: store.create_account(email="a@example.com", name="", password_hash=None, now=NOW),
    ):
        with pytest.raises(errors.ConfigurationError) as caught:
            call()
        assert "upgrade_schema()" in caught.value.detail
        assert "create_schema=True" in caught.value.detail


def test_upgrade_creates_the_schema_and_running_it_again_is_a_no_op(database):
    store = database.store()
    assert store.upgrade_schema() == SCHEMA_VERSION
    account = store.create_account(email="a@example.com", name="", password_hash=None, now=NOW)
    assert store.upgrade_schema() == SCHEMA_VERSION
    assert database.store(create_schema=True).get_account(account.id) == account
    assert store.schema_version() == SCHEMA_VERSION
    assert _versions(store) == list(range(1, SCHEMA_VERSION + 1))


def _add_nickname(connection) -> None:
    connection.execute(text("ALTER TABLE bpart_accounts ADD COLUMN nickname VARCHAR(20)"))


def test_an_old_schema_is_upgraded_step_by_step_and_a_newer_one_refused(database):
    store = database.store()
    store.upgrade_schema()
    account = store.create_account(email="a@example.com", name="", password_hash=None, now=NOW)
    steps = {**STEPS, SCHEMA_VERSION + 1: _add_nickname}
    assert upgrade(store._engine, steps=steps) == SCHEMA_VERSION + 1
    assert upgrade(store._engine, steps=steps) == SCHEMA_VERSION + 1
    assert _versions(store) == list(range(1, SCHEMA_VERSION + 2))
    columns = {c["name"] for c in inspect(store._engine).get_columns("bpart_accounts")}
    assert "nickname" in columns
    assert store.get_account(account.id) == account  # data kept
    # This bpart_auth knows only SCHEMA_VERSION: a newer database is refused.
    older_library = database.store()
    with pytest.raises(errors.ConfigurationError) as caught:
        older_library.get_account(account.id)
    assert "newer" in caught.value.detail
    with pytest.raises(errors.ConfigurationError):
        older_library.upgrade_schema()


def test_a_failing_step_leaves_the_previous_version(database):
    def broken(connection) -> None:
        connection.execute(text("CREATE TABLE bpart_half_done (x INTEGER)"))
        connection.execute(text("SELECT no_such_column FROM bpart_accounts"))

    store = database.store()
    with pytest.raises(SQLAlchemyError):
        upgrade(store._engine, steps={**STEPS, SCHEMA_VERSION + 1: broken})
    assert store.schema_version() == SCHEMA_VERSION
    assert not inspect(store._engine).has_table("bpart_half_done")


def test_concurrent_upgrades_apply_each_step_once(database):
    applied = []

    def slow_step(connection) -> None:
        applied.append(1)
        time.sleep(0.3)
        connection.execute(text("CREATE TABLE bpart_once (x INTEGER)"))  # fails if run twice

    steps = {**STEPS, SCHEMA_VERSION + 1: slow_step}
    stores = [database.store() for _ in range(4)]
    outcomes = race(4, lambda i: upgrade(stores[i]._engine, steps=steps))
    assert outcomes == [SCHEMA_VERSION + 1] * 4
    assert len(applied) == 1
    assert _versions(stores[0]) == list(range(1, SCHEMA_VERSION + 2))


UPGRADE = (
    "import json, sys; from bpart_auth.store.sql import SQLStore; "
    "print(SQLStore(sys.argv[1], engine_options=json.loads(sys.argv[2])).upgrade_schema())"
)


def test_two_processes_upgrading_at_once(database):
    arguments = [sys.executable, "-c", UPGRADE, database.url, json.dumps(database.options)]
    processes = [
        subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert out.strip() == str(SCHEMA_VERSION)
    assert _versions(database.store()) == list(range(1, SCHEMA_VERSION + 1))


def test_the_steps_build_the_tables_the_schema_describes(database):
    store = database.store()
    store.upgrade_schema()
    inspector = inspect(store._engine)
    for table in _schema.metadata.sorted_tables:
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert {name: c["nullable"] for name, c in columns.items()} == {
            c.name: c.nullable for c in table.columns
        }
        assert inspector.get_pk_constraint(table.name)["name"] == table.primary_key.name
        assert {u["name"] for u in inspector.get_unique_constraints(table.name)} == {
            c.name for c in table.constraints if c.__class__.__name__ == "UniqueConstraint"
        }
        assert {i["name"] for i in inspector.get_indexes(table.name)} >= {
            i.name for i in table.indexes
        }


# The database, not Python, keeps the invariants


@pytest.mark.parametrize(
    ("table", "constraint"),
    [
        ("accounts", _schema.ACCOUNT_EMAIL),
        ("identities", _schema.IDENTITY_KEY),
        ("identities-provider", _schema.IDENTITY_PROVIDER_PER_ACCOUNT),
        ("invites", _schema.INVITE_HASH),
        ("reset_tokens", _schema.RESET_HASH),
        ("reset_tokens-account", _schema.FOREIGN_KEY),
    ],
)
def test_the_database_refuses_what_python_would_refuse(store, table, constraint):
    ann = store.create_account(email="ann@example.com", name="", password_hash=None, now=NOW)
    bob = store.create_account(email="bob@example.com", name="", password_hash=None, now=NOW)
    store.link_identity(account_id=ann.id, identity=google("g1"), email=None, now=NOW)
    invite = store.create_invite(
        email="carl@example.com",
        invited_by=None,
        token_hash=token_hash("i"),
        expires_at=LATER,
        data={},
        now=NOW,
    )
    store.add_reset_token(account_id=ann.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW)
    identity = {"email": None, "linked_at": NOW}
    rows = {
        "accounts": (
            _schema.accounts,
            {
                "id": str(uuid.uuid4()),
                "email": "ann@example.com",
                "name": "",
                "disabled": False,
                "created_at": NOW,
                "credentials_changed_at": NOW,
            },
        ),
        "identities": (
            _schema.identities,
            {**identity, "provider": "google", "issuer": google("g1").issuer, "subject": "g1"}
            | {"account_id": bob.id},
        ),
        "identities-provider": (
            _schema.identities,
            {**identity, "provider": "google", "issuer": google("g2").issuer, "subject": "g2"}
            | {"account_id": ann.id},
        ),
        "invites": (
            _schema.invites,
            {
                "id": str(uuid.uuid4()),
                "email": "dan@example.com",
                "token_hash": token_hash("i"),
                "created_at": NOW,
                "expires_at": LATER,
                "data": "{}",
            },
        ),
        "reset_tokens": (
            _schema.reset_tokens,
            {"token_hash": token_hash("r"), "account_id": bob.id, "created_at": NOW}
            | {"expires_at": LATER},
        ),
        "reset_tokens-account": (
            _schema.reset_tokens,
            {"token_hash": token_hash("x"), "account_id": "no-such-id", "created_at": NOW}
            | {"expires_at": LATER},
        ),
    }
    target, values = rows[table]
    with store._engine.connect() as connection, pytest.raises(IntegrityError) as caught:
        connection.execute(target.insert().values(values))
    assert _schema.violated_constraint(caught.value) == constraint
    assert store.find_invite(token_hash("i")) == invite


# Time


def test_datetimes_round_trip_as_aware_utc_from_any_zone(store, database):
    paris = timezone(timedelta(hours=2))
    local = datetime(2026, 6, 1, 12, 0, 0, 5, tzinfo=paris)
    account = store.create_account(email="a@example.com", name="", password_hash=None, now=local)
    stored = store.get_account(account.id)
    assert stored is not None
    assert stored == account
    assert stored.created_at == local
    assert stored.created_at.tzinfo is timezone.utc
    assert (stored.created_at.hour, stored.created_at.microsecond) == (10, 5)
    invite = store.create_invite(
        email="b@example.com",
        invited_by=None,
        token_hash=token_hash("i"),
        expires_at=local + WEEK,
        data={},
        now=local,
    )
    assert store.list_pending_invites(now=local + WEEK - timedelta(microseconds=1)) == [invite]
    assert store.list_pending_invites(now=local + WEEK) == []
    with store._engine.connect() as connection:
        if database.backend == "sqlite":
            raw = connection.exec_driver_sql("SELECT created_at FROM bpart_accounts").scalar()
            assert raw == "2026-06-01 10:00:00.000005+00:00"
        else:
            kind = connection.exec_driver_sql("SELECT pg_typeof(created_at) FROM bpart_accounts")
            assert kind.scalar() == "timestamp with time zone"


def test_naive_datetimes_are_refused(store):
    naive = NOW.replace(tzinfo=None)
    with pytest.raises(errors.InvalidInput) as caught:
        store.create_account(email="a@example.com", name="", password_hash=None, now=naive)
    assert caught.value.field == "now"
    assert store.find_account_by_email("a@example.com") is None


# Driver errors never escape


def test_an_unreachable_postgresql_is_store_unavailable():
    store = SQLStore(CLOSED_PORT_URL)
    calls = [
        lambda: store.get_account(str(uuid.uuid4())),
        lambda: store.create_account(email="a@example.com", name="", password_hash=None, now=NOW),
        store.schema_version,
        store.upgrade_schema,
    ]
    for call in calls:
        with pytest.raises(errors.StoreUnavailable) as caught:
            call()
        assert caught.value.code == "store_unavailable"
        assert isinstance(caught.value.__cause__, SQLAlchemyError)
        assert caught.value.detail.startswith("OperationalError")


def test_an_unopenable_sqlite_file_is_store_unavailable(tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}")
    with pytest.raises(errors.StoreUnavailable) as caught:
        store.get_account(str(uuid.uuid4()))
    assert "unable to open" in caught.value.detail


def test_driver_errors_on_the_read_path_are_store_unavailable(store):
    account = store.create_account(email="a@example.com", name="", password_hash=None, now=NOW)
    with store._engine.connect() as connection:
        connection.exec_driver_sql("DROP TABLE bpart_identities")
    with pytest.raises(errors.StoreUnavailable) as caught:
        store.find_account_by_identity(google("g"))
    assert not isinstance(caught.value.__cause__, errors.AuthError)
    assert store.get_account(account.id) == account


@pytest.mark.postgres
def test_a_dropped_postgresql_connection_is_replaced(postgresql_db, postgres_admin):
    store = postgresql_db.store(create_schema=True)
    account = store.create_account(email="a@example.com", name="", password_hash=None, now=NOW)
    name = postgresql_db.options["connect_args"]["application_name"]
    postgres_admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (name,),
    )
    with pytest.raises(errors.StoreUnavailable):
        store.get_account(account.id)
    assert store.get_account(account.id) == account  # the dead connection was discarded


# No partial writes


def _snapshot(store: SQLStore) -> dict[str, list[tuple[Any, ...]]]:
    with store._engine.connect() as connection:
        return {
            table.name: sorted(tuple(map(str, row)) for row in connection.execute(select(table)))
            for table in _schema.metadata.sorted_tables
        }


def test_accept_invite_with_an_identity_linked_elsewhere_writes_nothing(store):
    owner = store.create_account(email="ann@example.com", name="", password_hash=None, now=NOW)
    store.link_identity(account_id=owner.id, identity=microsoft("taken"), email=None, now=NOW)
    store.create_invite(
        email="bob@example.com",
        invited_by=None,
        token_hash=token_hash("i"),
        expires_at=LATER + WEEK,
        data={},
        now=NOW,
    )
    before = _snapshot(store)
    with pytest.raises(errors.IdentityAlreadyLinked):
        store.accept_invite(
            token_hash=token_hash("i"),
            name="Bob",
            password_hash=None,
            identity=microsoft("taken"),
            identity_email=None,
            now=LATER,
        )
    assert _snapshot(store) == before


@pytest.mark.parametrize(
    "failing", ["load_account", "insert_link", "kill_what_a_disabled_account_left"]
)
def test_a_failure_late_in_a_transaction_undoes_all_of_it(store, monkeypatch, failing):
    ann = store.create_account(email="ann@example.com", name="", password_hash=HASH, now=NOW)
    store.add_reset_token(account_id=ann.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW)
    store.create_invite(
        email="bob@example.com",
        invited_by=ann.id,
        token_hash=token_hash("i"),
        expires_at=LATER + WEEK,
        data={},
        now=NOW,
    )
    before = _snapshot(store)

    def fail(*_: object) -> None:
        raise errors.StoreUnavailable(detail="injected")

    monkeypatch.setattr(_writes, failing, fail)
    if failing == "load_account":  # after the UPDATE and the token DELETE

        def call() -> object:
            return store.set_password_hash(ann.id, password_hash=OTHER_HASH, now=LATER)
    elif failing == "kill_what_a_disabled_account_left":  # after the UPDATE that disables

        def call() -> object:
            return store.update_account(ann.id, disabled=True, now=LATER)
    else:  # after consuming the invitation and inserting the account

        def call() -> object:
            return store.accept_invite(
                token_hash=token_hash("i"),
                name="Bob",
                password_hash=None,
                identity=google("bob"),
                identity_email=None,
                now=LATER,
            )

    with pytest.raises(errors.StoreUnavailable):
        call()
    assert _snapshot(store) == before


# Input the database could not take


@pytest.mark.parametrize(
    ("call", "field_name"),
    [
        pytest.param(
            lambda s, a: s.update_account(a.id, name="Ann \ud800"), "name", id="surrogate-name"
        ),
        pytest.param(
            lambda s, a: s.link_identity(
                account_id=a.id, identity=google("g\ud800"), email=None, now=NOW
            ),
            "subject",
            id="surrogate-subject",
        ),
        pytest.param(
            lambda s, a: s.link_identity(
                account_id=a.id, identity=Identity("x" * 51, "i", "s"), email=None, now=NOW
            ),
            "provider",
            id="long-provider",
        ),
        pytest.param(
            lambda s, a: s.link_identity(
                account_id=a.id, identity=google("g"), email="e" * 1001, now=NOW
            ),
            "identity_email",
            id="long-identity-email",
        ),
        pytest.param(
            lambda s, a: s.set_password_hash(a.id, password_hash="h" * 1001, now=NOW),
            "password_hash",
            id="long-password-hash",
        ),
        pytest.param(
            lambda s, a: s.set_password_hash(a.id, password_hash="h\x00", now=NOW),
            "password_hash",
            id="nul-password-hash",
        ),
        pytest.param(
            lambda s, a: s.add_reset_token(
                account_id=a.id, token_hash="t" * 129, expires_at=LATER, now=NOW
            ),
            "token_hash",
            id="long-token-hash",
        ),
        pytest.param(
            lambda s, _: s.create_invite(
                email="b@example.com",
                invited_by=None,
                token_hash=token_hash("i"),
                expires_at=LATER,
                data={"role": "\ud800"},
                now=NOW,
            ),
            "data",
            id="surrogate-data",
        ),
        pytest.param(
            lambda s, a: s.add_reset_token(
                account_id=a.id,
                token_hash=token_hash("r"),
                expires_at=LATER.replace(tzinfo=None),
                now=NOW,
            ),
            "expires_at",
            id="naive-expiry",
        ),
    ],
)
def test_input_the_database_cannot_take_is_invalid_input(store, call, field_name):
    account = store.create_account(email="a@example.com", name="A", password_hash=HASH, now=NOW)
    before = _snapshot(store)
    with pytest.raises(errors.InvalidInput) as caught:
        call(store, account)
    assert caught.value.field == field_name
    assert _snapshot(store) == before


def test_keys_that_cannot_exist_find_nothing(store):
    impossible = ["\x00", "x" * 5000, "caf\ud800"]
    for key in impossible:
        assert store.get_account(key) is None
        assert store.list_identities(key) == []
        assert store.find_invite(key) is None
        assert store.find_account_by_identity(google(key)) is None
        with pytest.raises(errors.AccountNotFound):
            store.update_account(key, name="x")
        with pytest.raises(errors.InvalidInvite):
            store.revoke_invite(key, now=NOW)
        with pytest.raises(errors.InvalidInvite):
            store.accept_invite(
                token_hash=key,
                name="",
                password_hash=HASH,
                identity=None,
                identity_email=None,
                now=NOW,
            )
        with pytest.raises(errors.InvalidResetToken):
            store.complete_reset(token_hash=key, password_hash=HASH, now=NOW)
    assert store.replace_password_hash("\x00", old=HASH, new=OTHER_HASH) is False


def test_a_reused_token_hash_is_refused_and_nothing_written(store):
    account = store.create_account(email="a@example.com", name="", password_hash=None, now=NOW)
    store.add_reset_token(
        account_id=account.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
    )
    invite = store.create_invite(
        email="b@example.com",
        invited_by=None,
        token_hash=token_hash("i"),
        expires_at=LATER,
        data={},
        now=NOW,
    )
    with pytest.raises(errors.InvalidInput) as caught:
        store.add_reset_token(
            account_id=account.id, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        )
    assert caught.value.field == "token_hash"
    with pytest.raises(errors.InvalidInput):
        store.create_invite(
            email="c@example.com",
            invited_by=None,
            token_hash=token_hash("i"),
            expires_at=LATER,
            data={},
            now=NOW,
        )
    with pytest.raises(errors.InvalidInput):
        store.renew_invite(
            store.create_invite(
                email="d@example.com",
                invited_by=None,
                token_hash=token_hash("d"),
                expires_at=LATER,
                data={},
                now=NOW,
            ).id,
            token_hash=token_hash("i"),
            expires_at=LATER,
            now=NOW,
        )
    assert store.find_invite(token_hash("i")) == invite
    assert store.find_account_by_email("c@example.com") is None
    assert [i.email for i in store.list_pending_invites(now=NOW)] == [
        "b@example.com",
        "d@example.com",
    ]


def test_accepting_with_a_token_replaced_meanwhile_is_refused(store):
    invite = store.create_invite(
        email="b@example.com",
        invited_by=None,
        token_hash=token_hash("old"),
        expires_at=LATER,
        data={},
        now=NOW,
    )
    store.renew_invite(invite.id, token_hash=token_hash("new"), expires_at=LATER, now=NOW)
    with pytest.raises(errors.InvalidInvite) as caught:
        store.accept_invite(
            token_hash=token_hash("old"),
            name="",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=NOW,
        )
    assert caught.value.code == "invite_invalid"


# Rows written before emails were validated on write


def _legacy_rows(store, *, account_email, invite_email):
    """Insert an account and a pending invitation as an older version could have."""
    assert store.find_account_by_email("nobody@example.com") is None  # schema created
    with store._engine.begin() as connection:
        connection.execute(
            _schema.accounts.insert().values(
                id=str(uuid.uuid4()),
                email=account_email,
                name="",
                disabled=False,
                created_at=NOW,
                credentials_changed_at=NOW,
            )
        )
        connection.execute(
            _schema.invites.insert().values(
                id=str(uuid.uuid4()),
                email=invite_email,
                token_hash=token_hash("legacy"),
                created_at=NOW,
                expires_at=LATER,
                data="{}",
            )
        )


def test_rows_stored_before_validation_are_still_found(store):
    _legacy_rows(store, account_email="ann@example.com.", invite_email="bob@example.com")
    legacy = store.find_account_by_email("Ann@Example.com.")
    assert legacy is not None
    assert legacy.email == "ann@example.com."
    assert store.find_account_by_email("ann@example.com") is None


def test_an_invitation_stored_before_validation_cannot_create_its_account(store):
    _legacy_rows(store, account_email="ann@example.com", invite_email="bob@example.com.")
    with pytest.raises(errors.InvalidEmail) as caught:
        store.accept_invite(
            token_hash=token_hash("legacy"),
            name="Bob",
            password_hash=HASH,
            identity=google("g1"),
            identity_email="bob@example.com",
            now=NOW,
        )
    assert "cannot end with a period" in caught.value.detail
    assert store.find_account_by_email("bob@example.com.") is None
    assert store.find_account_by_identity(google("g1")) is None
    invite = store.find_invite(token_hash("legacy"))
    assert invite is not None
    assert invite.status(NOW) == "pending"


# consume_once: single use of anything


def test_consume_once(store):
    until = NOW + timedelta(minutes=10)
    assert store.consume_once(purpose="flow_state", key="k1", expires_at=until, now=NOW) is True
    assert store.consume_once(purpose="flow_state", key="k1", expires_at=until, now=LATER) is False
    assert store.consume_once(purpose="other", key="k1", expires_at=until, now=NOW) is True
    assert store.consume_once(purpose="flow_state", key="k2", expires_at=until, now=NOW) is True
    # Once its record expired, a key is new again (the value it guarded is dead by then).
    later = until + timedelta(minutes=10)
    assert store.consume_once(purpose="flow_state", key="k1", expires_at=later, now=until) is True
    assert store.consume_once(purpose="flow_state", key="k1", expires_at=later, now=until) is False


def test_consume_once_race(store):
    outcomes = race(
        StoreContract.race_threads,
        lambda _: store.consume_once(purpose="flow_state", key="k", expires_at=LATER, now=NOW),
    )
    assert outcomes.count(True) == 1
    assert outcomes.count(False) == StoreContract.race_threads - 1


def test_consume_once_forgets_expired_keys(store, monkeypatch):
    monkeypatch.setattr(sql_module, "_PURGE_EVERY", 1)
    for i in range(5):
        store.consume_once(purpose="p", key=f"old{i}", expires_at=NOW, now=NOW - WEEK)
    store.consume_once(purpose="p", key="new", expires_at=LATER + WEEK, now=LATER)
    with store._engine.connect() as connection:
        keys = connection.execute(select(_schema.used_once.c.key)).scalars().all()
    assert keys == ["new"]


@pytest.mark.parametrize(
    ("purpose", "key", "field_name"),
    [("p" * 201, "k", "purpose"), ("p", "k" * 1001, "key"), ("p", "k\x00", "key")],
)
def test_consume_once_refuses_what_it_cannot_store(store, purpose, key, field_name):
    with pytest.raises(errors.InvalidInput) as caught:
        store.consume_once(purpose=purpose, key=key, expires_at=LATER, now=NOW)
    assert caught.value.field == field_name


# Second factors: schema version 2 and what only SQL has


def test_schema_version_2_adds_the_second_factor_tables():
    assert SCHEMA_VERSION == 2
    assert set(_schema.VERSION_2_TABLES) == {_schema.second_factors, _schema.recovery_codes}


def test_a_version_1_database_is_refused_then_upgraded_with_its_data(database):
    old = database.store()
    assert upgrade(old._engine, steps={1: STEPS[1]}) == 1
    assert not inspect(old._engine).has_table("bpart_second_factors")
    account_id = str(uuid.uuid4())
    with old._engine.begin() as connection:  # a row as version 1 wrote it
        connection.execute(
            _schema.accounts.insert().values(
                id=account_id,
                email="ann@example.com",
                name="Ann",
                disabled=False,
                created_at=NOW,
                credentials_changed_at=NOW,
            )
        )
    store = database.store()
    with pytest.raises(errors.ConfigurationError) as caught:
        store.list_second_factors(account_id)
    assert "is at version 1" in caught.value.detail
    assert "bpart-auth migrate" in caught.value.detail
    assert store.upgrade_schema() == SCHEMA_VERSION
    assert _versions(store) == [1, 2]
    phone = store.add_second_factor(
        account_id=account_id, kind="totp", name="Phone", secret="s", lookup_key=None, now=LATER
    )
    assert store.list_second_factors(account_id) == [phone]
    assert database.store().get_account(account_id).email == "ann@example.com"


def test_bpart_auth_migrate_brings_a_version_1_file_up(tmp_path):
    from bpart_auth._cli import main  # noqa: PLC0415

    url = f"sqlite:///{tmp_path / 'auth.db'}"
    old = SQLStore(url)
    upgrade(old._engine, steps={1: STEPS[1]})
    old.close()
    out = io.StringIO()
    assert main(["migrate", url], out=out) == 0
    assert out.getvalue() == f"schema upgraded from version 1 to {SCHEMA_VERSION}\n"
    store = SQLStore(url)
    assert store.count_recovery_codes(str(uuid.uuid4())) == 0
    store.close()


def _two_factors_and_codes(store: SQLStore):
    ann = store.create_account(email="ann@example.com", name="", password_hash=HASH, now=NOW)
    store.add_second_factor(
        account_id=ann.id, kind="passkey", name="Key", secret="{}", lookup_key="a2V5", now=NOW
    )
    phone = store.add_second_factor(
        account_id=ann.id, kind="totp", name="Phone", secret="s", lookup_key=None, now=NOW
    )
    store.replace_recovery_codes(ann.id, code_hashes=[token_hash("c1"), token_hash("c2")], now=NOW)
    return ann, phone


@pytest.mark.parametrize(
    ("table", "constraint"),
    [
        ("lookup_key", _schema.FACTOR_LOOKUP_KEY),
        ("factor-account", _schema.FOREIGN_KEY),
        ("recovery_code", _schema.RECOVERY_CODE_KEY),
        ("recovery_code-account", _schema.FOREIGN_KEY),
    ],
)
def test_the_database_refuses_what_python_would_refuse_for_factors(store, table, constraint):
    ann, _ = _two_factors_and_codes(store)
    factor = {"kind": "passkey", "name": "", "secret": "{}", "created_at": NOW}
    rows = {
        "lookup_key": (
            _schema.second_factors,
            factor | {"id": str(uuid.uuid4()), "account_id": ann.id, "lookup_key": "a2V5"},
        ),
        "factor-account": (
            _schema.second_factors,
            factor | {"id": str(uuid.uuid4()), "account_id": "no-such-id", "lookup_key": "x"},
        ),
        "recovery_code": (
            _schema.recovery_codes,
            {"account_id": ann.id, "code_hash": token_hash("c1"), "created_at": NOW},
        ),
        "recovery_code-account": (
            _schema.recovery_codes,
            {"account_id": "no-such-id", "code_hash": token_hash("c1"), "created_at": NOW},
        ),
    }
    target, values = rows[table]
    with store._engine.connect() as connection, pytest.raises(IntegrityError) as caught:
        connection.execute(target.insert().values(values))
    assert _schema.violated_constraint(caught.value) == constraint


def test_deleting_an_account_row_deletes_its_factors_and_codes(store):
    ann, _ = _two_factors_and_codes(store)
    bob = store.create_account(email="bob@example.com", name="", password_hash=HASH, now=NOW)
    store.add_second_factor(
        account_id=bob.id, kind="totp", name="Phone", secret="s", lookup_key=None, now=NOW
    )
    with store._engine.begin() as connection:
        connection.execute(_schema.accounts.delete().where(_schema.accounts.c.id == ann.id))
    assert store.list_second_factors(ann.id) == []
    assert store.find_second_factor("a2V5") is None
    assert store.count_recovery_codes(ann.id) == 0
    assert _count(store, _schema.second_factors) == 1
    assert _count(store, _schema.recovery_codes) == 0


def test_a_failure_late_in_a_factor_write_undoes_all_of_it(store, monkeypatch):
    ann, phone = _two_factors_and_codes(store)
    before = _snapshot(store)

    def fail(*_: object, **__: object) -> None:
        raise errors.StoreUnavailable(detail="injected")

    monkeypatch.setattr(_writes, "stamp_credentials", fail)  # each write's last statement
    with pytest.raises(errors.StoreUnavailable):  # after the DELETEs of the factor and codes
        store.remove_second_factor(ann.id, phone.factor.id, keep_at_least=0, now=LATER)
    with pytest.raises(errors.StoreUnavailable):  # after the INSERT
        store.add_second_factor(
            account_id=ann.id, kind="totp", name="Tab", secret="s", lookup_key=None, now=LATER
        )
    with pytest.raises(errors.StoreUnavailable):  # after the DELETE and INSERT of codes
        store.replace_recovery_codes(ann.id, code_hashes=[token_hash("c3")], now=LATER)
    assert _snapshot(store) == before


def test_a_spent_recovery_code_keeps_when_it_was_used(store):
    ann, _ = _two_factors_and_codes(store)
    assert store.use_recovery_code(ann.id, code_hash=token_hash("c1"), now=LATER) is True
    with store._engine.connect() as connection:
        rows = connection.execute(
            select(_schema.recovery_codes.c.code_hash, _schema.recovery_codes.c.used_at)
        ).all()
    used = {code: _schema.load_optional_time(at) for code, at in rows}
    assert used == {token_hash("c1"): LATER, token_hash("c2"): None}


def test_factor_times_must_be_aware(store):
    ann, phone = _two_factors_and_codes(store)
    naive = LATER.replace(tzinfo=None)
    for call, field_name in [
        (lambda: store.update_second_factor(phone.factor.id, used_at=naive), "used_at"),
        (
            lambda: store.remove_second_factor(ann.id, phone.factor.id, keep_at_least=0, now=naive),
            "now",
        ),
        (lambda: store.replace_recovery_codes(ann.id, code_hashes=[], now=naive), "now"),
        (lambda: store.use_recovery_code(ann.id, code_hash=token_hash("c1"), now=naive), "now"),
    ]:
        with pytest.raises(errors.InvalidInput) as caught:
            call()
        assert caught.value.field == field_name
    assert store.count_recovery_codes(ann.id) == 2
