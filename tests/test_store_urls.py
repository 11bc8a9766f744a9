"""SQLStore URLs: the supported schemes, postgres:// as hosts give it, and typed refusals."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.engine import make_url

from bpart_auth import errors
from bpart_auth.store._engine import URL_FORMS, describe
from bpart_auth.store.sql import SQLStore
from bpart_auth.testing.store_contract import NOW
from conftest import POSTGRES_URL


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        pytest.param("sqlite:///auth.db", "sqlite+pysqlite", id="sqlite"),
        pytest.param("sqlite+pysqlite:///auth.db", "sqlite+pysqlite", id="sqlite+pysqlite"),
        pytest.param("postgresql://ann@db.example/auth", "postgresql+psycopg", id="postgresql"),
        pytest.param(
            "postgresql+psycopg://ann@db.example/auth", "postgresql+psycopg", id="psycopg"
        ),
        pytest.param("postgres://ann:pw@db.example:5432/auth", "postgresql+psycopg", id="heroku"),
        pytest.param(
            "postgres+psycopg://ann@db.example/auth", "postgresql+psycopg", id="postgres+"
        ),
        pytest.param("PostgreSQL://ann@db.example/auth", "postgresql+psycopg", id="upper-case"),
    ],
)
def test_supported_urls(url, driver):
    store = SQLStore(url)
    dialect = store._engine.dialect
    assert f"{dialect.name}+{dialect.driver}" == driver
    assert "pw" not in repr(store)


@pytest.mark.postgres
def test_a_postgres_url_as_heroku_gives_it_reaches_postgresql(postgresql_db):
    heroku = make_url(POSTGRES_URL).set(drivername="postgres").render_as_string(hide_password=False)
    assert heroku.startswith("postgres://")
    store = SQLStore(heroku, engine_options=postgresql_db.options, create_schema=True)
    try:
        account = store.create_account(email="a@example.com", name="", password_hash=None, now=NOW)
        assert store.find_account_by_email("a@example.com") == account
    finally:
        store.close()


@pytest.mark.parametrize(
    ("url", "says"),
    [
        pytest.param("redis://:s3cret@127.0.0.1:6379/0", "'redis://'", id="redis"),
        pytest.param("mysql://ann:s3cret@db.example/auth", "'mysql://'", id="mysql"),
        pytest.param("foo://", "'foo://'", id="unknown"),
        pytest.param("sqlite+aiosqlite:///auth.db", "'sqlite+aiosqlite://'", id="async-sqlite"),
        pytest.param(
            "postgresql+psycopg2://ann@db/auth", "'postgresql+psycopg2://'", id="psycopg2"
        ),
        pytest.param("postgresql+asyncpg://ann@db/auth", "'postgresql+asyncpg://'", id="asyncpg"),
        pytest.param("https://db.example/auth", "'https://'", id="https"),
        pytest.param("/var/lib/auth.db", "not a database URL", id="bare-path"),
        pytest.param("ann:s3cret@db.example/auth", "not a database URL", id="no-scheme"),
        pytest.param("", "not a database URL", id="empty"),
        pytest.param("postgresql://ann@db:port/auth", "not a database URL", id="bad-port"),
        pytest.param(None, "must be a str, not NoneType", id="none"),
        pytest.param(b"sqlite:///auth.db", "must be a str, not bytes", id="bytes"),
        pytest.param(make_url("sqlite:///auth.db"), "must be a str, not URL", id="url-object"),
    ],
)
def test_other_urls_are_configuration_errors_naming_the_supported_forms(url, says):
    with pytest.raises(errors.ConfigurationError) as caught:
        SQLStore(url)
    error = caught.value
    assert error.code == "configuration_error"
    assert says in error.detail
    for form in URL_FORMS:
        assert form in error.detail
    assert "s3cret" not in error.detail
    assert str(error) == errors.ConfigurationError.default_message


def test_a_password_a_driver_repeats_is_masked_in_detail():
    failure = sqlite3.OperationalError('connect to "db" as ann with s3cret failed\nmore')
    assert describe(failure, password="s3cret") == (
        'OperationalError: connect to "db" as ann with *** failed'
    )
    assert describe(failure) == 'OperationalError: connect to "db" as ann with s3cret failed'
