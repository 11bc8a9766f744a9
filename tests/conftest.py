"""Shared test set-up: services are required under CI and optional elsewhere."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
import responses

from bpart_auth import Auth, MemoryStore
from bpart_auth.store.sql import SQLStore
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft
from e2e.oidc_fixture import missing_requirement

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("BPART_AUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "a unit-test secret key of 32+ bytes"


def service_missing(name: str, reason: str) -> None:
    """Skip the test on a developer machine, fail it under CI, when a service is absent.

    Under CI every service must be there (`.ci/run` starts them), so a skip there
    would hide a broken set-up.
    """
    message = f"{name} is not available: {reason}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services are required, not skipped)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def oidc_available() -> None:
    """Skip (locally) or fail (CI=true) when node or the npm packages are missing."""
    reason = missing_requirement()
    if reason is not None:
        service_missing("oidc-provider", reason)


class Clock:
    """An aware `datetime` clock for `Auth(clock=...)`, moved by setting `now`."""

    def __init__(self):
        self.now = datetime.now(timezone.utc)

    def __call__(self):
        return self.now


@pytest.fixture
def fakes():
    """FakeGoogle and FakeMicrosoft, served through one `responses` mock."""
    google, microsoft = FakeGoogle(), FakeMicrosoft()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        google.install(mock)
        microsoft.install(mock)
        yield google, microsoft


@pytest.fixture
def auth_with_fakes(fakes):
    """`auth_with_fakes(**settings)`: an `Auth` on a new MemoryStore, signing in at `fakes`.

    Cheap password hashing and a fixed secret key; `settings` (`redirect_uri`, `clock`,
    ...) go to `Auth` as they are.
    """
    google, microsoft = fakes

    def make(**settings: Any) -> Auth:
        return Auth(
            MemoryStore(),
            secret_key=SECRET,
            providers=[google.provider(), microsoft.provider()],
            password_hashing=CHEAP_FOR_TESTS,
            **settings,
        )

    return make


@pytest.fixture
def redis_client():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        service_missing("Redis", f"{REDIS_URL} does not answer ({exc})")
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_client):
    prefix = f"bpart_auth_test:{uuid.uuid4().hex}:"
    yield prefix
    for key in redis_client.scan_iter(match=f"{prefix}*"):
        redis_client.delete(key)


# SQL databases: a fresh SQLite file or PostgreSQL schema per test.

POSTGRES_URL = os.environ.get(
    "BPART_AUTH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LIBPQ_URL = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
CLOSED_PORT_URL = "postgresql+psycopg://postgres@127.0.0.1:1/test"


@dataclass
class Database:
    """A fresh, empty database (a SQLite file or a PostgreSQL schema) to open stores on."""

    backend: str
    url: str
    options: dict[str, Any] = field(default_factory=dict)
    opened: list[SQLStore] = field(default_factory=list)

    def store(self, **kwargs: Any) -> SQLStore:
        store = SQLStore(self.url, engine_options=self.options, **kwargs)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(scope="session")
def postgres_admin():
    try:
        connection = psycopg.connect(LIBPQ_URL, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        service_missing("PostgreSQL", f"{POSTGRES_URL} does not answer ({exc})")
    yield connection
    connection.close()


@pytest.fixture
def postgresql_db(postgres_admin):
    schema = f"bpart_test_{uuid.uuid4().hex[:12]}"
    postgres_admin.execute(f"CREATE SCHEMA {schema}")
    database = Database(
        "postgresql",
        POSTGRES_URL,
        {"connect_args": {"options": f"-csearch_path={schema}", "application_name": schema}},
    )
    yield database
    database.close()
    postgres_admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_db(tmp_path):
    database = Database("sqlite", f"sqlite:///{tmp_path / 'auth.db'}")
    yield database
    database.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request) -> Database:
    return request.getfixturevalue(f"{request.param}_db")


# `AsyncAuth` runs the same flow tests: a test module's `auth` fixture wraps its `Auth`
# with `facade`, so each test runs on the sync Auth, then on AsyncAuth under asyncio and
# under trio (awaited on a portal's event loop, through `async_facade.Blocking`).


@pytest.fixture(params=["sync", "asyncio", "trio"])
def facade(request):
    if request.param == "sync":
        yield lambda auth: auth
        return
    from anyio.from_thread import start_blocking_portal  # noqa: PLC0415 - only these runs

    from async_facade import Blocking  # noqa: PLC0415
    from bpart_auth.aio import AsyncAuth  # noqa: PLC0415

    with start_blocking_portal(request.param) as portal:
        yield lambda auth: Blocking(AsyncAuth(auth), portal)
