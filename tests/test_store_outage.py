"""SQLStore under outage: every call raises `StoreUnavailable`, never a driver error.

A database that cannot be reached (a SQLite file in a missing folder or at a path
that cannot be opened, PostgreSQL on a closed port or with a wrong database name) and
one that goes away between calls (SQLite's folder moved, PostgreSQL's connections cut
by a proxy) fail every read, write and schema call with `store_unavailable`, through
the store and through `Auth`; when the database is back, the store works again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy.engine import make_url

from bpart_auth import Auth, Throttle, errors
from bpart_auth.guards import StoreGuard
from bpart_auth.store._sql_throttle import SQLThrottle
from bpart_auth.store.sql import SQLStore
from bpart_auth.testing import CHEAP_FOR_TESTS
from bpart_auth.testing.store_contract import HASH, LATER, NOW, WEEK, google, token_hash
from conftest import CLOSED_PORT_URL, POSTGRES_URL

PASSWORD = "correct horse battery staple"
SECRET = "s3cret-not-to-be-shown"
SOME_ID = str(uuid.uuid4())

# Every call a caller can make on a SQLStore (and the SQL guard and throttle on it).
STORE_CALLS = [
    pytest.param(lambda store: store.get_account(SOME_ID), id="get_account"),
    pytest.param(lambda store: store.find_account_by_email("a@example.com"), id="by_email"),
    pytest.param(lambda store: store.find_password_hash("a@example.com"), id="password_hash"),
    pytest.param(lambda store: store.find_account_by_identity(google("g")), id="by_identity"),
    pytest.param(lambda store: store.list_identities(SOME_ID), id="list_identities"),
    pytest.param(lambda store: store.find_invite(token_hash("i")), id="find_invite"),
    pytest.param(lambda store: store.list_pending_invites(now=NOW), id="pending_invites"),
    pytest.param(
        lambda store: store.find_account_by_reset_token(token_hash("r")), id="by_reset_token"
    ),
    pytest.param(
        lambda store: store.create_account(
            email="a@example.com", name="", password_hash=HASH, now=NOW
        ),
        id="create_account",
    ),
    pytest.param(lambda store: store.update_account(SOME_ID, name="B"), id="update_account"),
    pytest.param(
        lambda store: store.set_password_hash(SOME_ID, password_hash=HASH, now=NOW),
        id="set_password_hash",
    ),
    pytest.param(
        lambda store: store.replace_password_hash(SOME_ID, old=HASH, new=HASH),
        id="replace_password_hash",
    ),
    pytest.param(
        lambda store: store.link_identity(
            account_id=SOME_ID, identity=google("g"), email=None, now=NOW
        ),
        id="link_identity",
    ),
    pytest.param(
        lambda store: store.unlink_identity(account_id=SOME_ID, provider="google", now=NOW),
        id="unlink_identity",
    ),
    pytest.param(
        lambda store: store.create_invite(
            email="b@example.com",
            invited_by=None,
            token_hash=token_hash("i"),
            expires_at=NOW + WEEK,
            data={},
            now=NOW,
        ),
        id="create_invite",
    ),
    pytest.param(
        lambda store: store.accept_invite(
            token_hash=token_hash("i"),
            name="",
            password_hash=HASH,
            identity=None,
            identity_email=None,
            now=NOW,
        ),
        id="accept_invite",
    ),
    pytest.param(
        lambda store: store.add_reset_token(
            account_id=SOME_ID, token_hash=token_hash("r"), expires_at=LATER, now=NOW
        ),
        id="add_reset_token",
    ),
    pytest.param(
        lambda store: store.complete_reset(token_hash=token_hash("r"), password_hash=HASH, now=NOW),
        id="complete_reset",
    ),
    pytest.param(
        lambda store: store.consume_once(purpose="p", key="k", expires_at=LATER, now=NOW),
        id="consume_once",
    ),
    pytest.param(
        lambda store: store.add_second_factor(
            account_id=SOME_ID, kind="totp", name="Phone", secret="s", lookup_key=None, now=NOW
        ),
        id="add_second_factor",
    ),
    pytest.param(lambda store: store.list_second_factors(SOME_ID), id="list_second_factors"),
    pytest.param(lambda store: store.find_second_factor("a2V5"), id="find_second_factor"),
    pytest.param(
        lambda store: store.update_second_factor(SOME_ID, name="Key"), id="update_second_factor"
    ),
    pytest.param(
        lambda store: store.remove_second_factor(SOME_ID, SOME_ID, keep_at_least=0, now=NOW),
        id="remove_second_factor",
    ),
    pytest.param(
        lambda store: store.replace_recovery_codes(SOME_ID, code_hashes=[token_hash("c")], now=NOW),
        id="replace_recovery_codes",
    ),
    pytest.param(
        lambda store: store.use_recovery_code(SOME_ID, code_hash=token_hash("c"), now=NOW),
        id="use_recovery_code",
    ),
    pytest.param(lambda store: store.count_recovery_codes(SOME_ID), id="count_recovery_codes"),
    pytest.param(
        lambda store: StoreGuard(store).consume(
            purpose="p", key="k", expires_at=datetime.now(timezone.utc) + WEEK
        ),
        id="store_guard",
    ),
    pytest.param(
        lambda store: Throttle(backend=SQLThrottle(store)).check(
            email="a@example.com", client_address="192.0.2.1"
        ),
        id="throttle_check",
    ),
    pytest.param(
        lambda store: Throttle(backend=SQLThrottle(store)).failed(
            email="a@example.com", client_address="192.0.2.1"
        ),
        id="throttle_failed",
    ),
    pytest.param(lambda store: store.schema_version(), id="schema_version"),
    pytest.param(lambda store: store.upgrade_schema(), id="upgrade_schema"),
]


def _auth(store: SQLStore) -> Auth:
    return Auth(store, password_hashing=CHEAP_FOR_TESTS)


# What an app calls on `Auth`, the ones every request or form makes.
AUTH_CALLS = [
    pytest.param(
        lambda store: _auth(store).passwords.sign_in("a@example.com", PASSWORD),
        id="passwords.sign_in",
    ),
    pytest.param(
        lambda store: _auth(store).sessions.account(f"{NOW.isoformat()} {SOME_ID}"),
        id="sessions_account",
    ),
    pytest.param(lambda store: _auth(store).get_account(SOME_ID), id="get_account"),
    pytest.param(lambda store: _auth(store).passwords.begin_reset("a@example.com"), id="reset"),
    pytest.param(
        lambda store: _auth(store).create_account(email="new@example.com", password=PASSWORD),
        id="create_account",
    ),
    pytest.param(
        lambda store: _auth(store).invites.create(email="new@example.com"), id="invites_create"
    ),
]


def assert_unavailable(caught: pytest.ExceptionInfo[errors.StoreUnavailable]) -> None:
    error = caught.value
    assert type(error) is errors.StoreUnavailable
    assert error.code == "store_unavailable"
    assert str(error) == errors.StoreUnavailable.default_message
    assert error.detail
    assert error.detail.startswith("OperationalError: ")
    assert SECRET not in error.detail
    assert not isinstance(error.__cause__, errors.AuthError)


def _wrong_database_url() -> str:
    return (
        make_url(POSTGRES_URL)
        .set(database=f"no_such_db_{uuid.uuid4().hex[:8]}")
        .render_as_string(hide_password=False)
    )


@pytest.fixture(
    params=[
        "sqlite-missing-folder",
        "sqlite-path-is-a-folder",
        "postgresql-closed-port",
        "postgresql-wrong-database",
    ]
)
def unreachable(request, tmp_path) -> SQLStore:
    """A store on a database that cannot be reached (constructing one connects to nothing)."""
    url = {
        "sqlite-missing-folder": f"sqlite:///{tmp_path / 'no' / 'such' / 'folder.db'}",
        "sqlite-path-is-a-folder": f"sqlite:///{tmp_path}",
        "postgresql-closed-port": CLOSED_PORT_URL.replace("postgres@", f"postgres:{SECRET}@"),
        "postgresql-wrong-database": _wrong_database_url(),
    }[request.param]
    store = SQLStore(url)
    yield store
    store.close()


@pytest.mark.parametrize("call", STORE_CALLS)
def test_every_store_call_on_an_unreachable_database_is_store_unavailable(unreachable, call):
    with pytest.raises(errors.StoreUnavailable) as caught:
        call(unreachable)
    assert_unavailable(caught)


@pytest.mark.parametrize("call", AUTH_CALLS)
def test_auth_on_an_unreachable_database_is_store_unavailable(unreachable, call):
    with pytest.raises(errors.StoreUnavailable) as caught:
        call(unreachable)
    assert_unavailable(caught)


def test_create_schema_on_an_unreachable_database_is_store_unavailable(tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'missing' / 'auth.db'}", create_schema=True)
    with pytest.raises(errors.StoreUnavailable) as caught:
        store.get_account(SOME_ID)
    assert_unavailable(caught)
    assert "unable to open" in caught.value.detail


# A database that goes away between calls, then comes back


class Proxy:
    """A TCP proxy to PostgreSQL that can cut every connection and refuse new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a server that died."""
        assert self._listener is not None
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() below
        self._listener.close()
        for open_socket in self._sockets:
            with contextlib.suppress(OSError):
                open_socket.shutdown(socket.SHUT_RDWR)
            open_socket.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)


@pytest.fixture
def proxied_postgresql(postgresql_db):
    """(store, take_away, bring_back) for a PostgreSQL store reached through a proxy."""
    url = make_url(POSTGRES_URL)
    proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
    proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    store = SQLStore(proxied, engine_options=postgresql_db.options, create_schema=True)
    yield store, proxy.stop, proxy.start
    store.close()
    with contextlib.suppress(AssertionError, OSError):
        proxy.stop()


@pytest.fixture
def moved_sqlite(tmp_path):
    """(store, take_away, bring_back) for a SQLite file whose folder is moved away."""
    folder = tmp_path / "data"
    folder.mkdir()
    store = SQLStore(f"sqlite:///{folder / 'auth.db'}", create_schema=True)

    def take_away() -> None:
        store.close()  # open connections would keep reading the moved file
        folder.rename(tmp_path / "elsewhere")

    def bring_back() -> None:
        (tmp_path / "elsewhere").rename(folder)

    yield store, take_away, bring_back
    store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def going_away(request):
    return request.getfixturevalue(
        {"sqlite": "moved_sqlite", "postgresql": "proxied_postgresql"}[request.param]
    )


@pytest.mark.parametrize("call", STORE_CALLS)
def test_a_database_gone_after_first_use_is_store_unavailable_then_back(going_away, call):
    store, take_away, bring_back = going_away
    account = store.create_account(email="ann@example.com", name="", password_hash=HASH, now=NOW)
    take_away()
    for _ in range(2):  # the dead pooled connection first, then a refused new one
        with pytest.raises(errors.StoreUnavailable) as caught:
            call(store)
        assert_unavailable(caught)
    bring_back()
    assert store.get_account(account.id) == account
    assert store.find_account_by_email("a@example.com") is None


@pytest.mark.parametrize("call", AUTH_CALLS)
def test_auth_on_a_database_gone_after_first_use_is_store_unavailable(going_away, call):
    store, take_away, bring_back = going_away
    auth = _auth(store)
    account = auth.create_account(email="a@example.com", password=PASSWORD)
    take_away()
    for _ in range(2):
        with pytest.raises(errors.StoreUnavailable) as caught:
            call(store)
        assert_unavailable(caught)
    bring_back()
    assert auth.passwords.sign_in("a@example.com", PASSWORD) == account
    assert auth.sessions.account(auth.sessions.stamp(account)) == account
    assert store.find_account_by_email("new@example.com") is None
    assert auth.invites.pending() == []


def test_an_invite_survives_an_outage_of_its_database(moved_sqlite):
    store, take_away, bring_back = moved_sqlite
    auth = _auth(store)
    invite, token = auth.invites.create(email="new@example.com")
    take_away()
    with pytest.raises(errors.StoreUnavailable):
        auth.invites.accept_with_password(token, password=PASSWORD)
    bring_back()
    assert auth.invites.pending() == [invite]
    account = auth.invites.accept_with_password(token, password=PASSWORD)
    assert account.email == "new@example.com"
    assert auth.passwords.sign_in("new@example.com", PASSWORD) == account
