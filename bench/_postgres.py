"""PostgreSQL for the benchmarks: whether it answers, and a schema of our own per use.

The URL is the tests' (`BPART_AUTH_TEST_POSTGRES_URL`, by default the `test` database
on 127.0.0.1:5432). Each benchmark works in a schema it creates with a unique name
and drops at the end, so it never touches another user's tables.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import TYPE_CHECKING, Any

from bpart_auth.store.sql import SQLStore

if TYPE_CHECKING:
    from collections.abc import Iterator

URL = os.environ.get(
    "BPART_AUTH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LIBPQ_URL = URL.replace("postgresql+psycopg://", "postgresql://")


def unavailable() -> str | None:
    """Why PostgreSQL cannot be used here, or None when it answers."""
    try:
        import psycopg  # noqa: PLC0415 - only when PostgreSQL is benchmarked

        psycopg.connect(LIBPQ_URL, connect_timeout=3, autocommit=True).close()
    except Exception as exc:  # noqa: BLE001 - any failure means: skip PostgreSQL
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{LIBPQ_URL.rsplit('@', 1)[-1]} does not answer ({first_line})"
    return None


@contextlib.contextmanager
def schema(label: str) -> Iterator[str]:
    """Create a fresh schema, yield the libpq `options` that select it, drop it after."""
    import psycopg  # noqa: PLC0415

    name = f"bpart_bench_{uuid.uuid4().hex[:8]}_{label}"
    with psycopg.connect(LIBPQ_URL, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {name}")
        try:
            yield f"-csearch_path={name}"
        finally:
            admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def store(options: str) -> SQLStore:
    """A `SQLStore` in the schema `options` selects, its tables created."""
    engine_options: dict[str, Any] = {"connect_args": {"options": options}}
    sql_store = SQLStore(URL, engine_options=engine_options)
    sql_store.upgrade_schema()
    return sql_store
