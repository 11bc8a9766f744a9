"""Run from a fresh venv holding only the built wheel (and one extra): it works.

`python wheel_smoke.py` (the wheel alone) checks that `import bpart_auth` works with no
extras, pulls in no web framework or optional backend, opens no network connection,
ships its type marker and the demo's templates, and that `bpart-auth demo` says what
to install. `python wheel_smoke.py EXTRA` (the wheel installed as `bpart-auth[EXTRA]`)
checks that what the extra promises imports and runs.
"""

import contextlib
import importlib.resources
import importlib.util
import io
import socket
import sys
import tempfile
from pathlib import Path


def _no_network(*args: object, **kwargs: object) -> None:
    raise AssertionError("bpart_auth opened a network connection at import")


FORBIDDEN = {"flask", "django", "fastapi", "starlette", "anyio", "sqlalchemy", "redis", "psycopg"}


def bare() -> None:
    connect, create_connection = socket.socket.connect, socket.create_connection
    socket.socket.connect = _no_network  # type: ignore[method-assign,assignment]
    socket.create_connection = _no_network  # type: ignore[assignment]
    try:
        import bpart_auth  # noqa: PLC0415
    finally:
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.create_connection = create_connection

    leaked = sorted(FORBIDDEN & set(sys.modules))
    assert not leaked, f"importing bpart_auth imported {leaked}"
    files = importlib.resources.files("bpart_auth")
    assert files.joinpath("py.typed").is_file(), "py.typed missing"
    assert files.joinpath("_demo", "templates", "login.html").is_file(), "demo templates missing"
    assert bpart_auth.__version__, "no __version__"
    print(f"wheel ok: bpart_auth {bpart_auth.__version__} from {bpart_auth.__file__}")

    # Without the demo extra, `bpart-auth demo` says what to install instead of a traceback.
    from bpart_auth import _cli  # noqa: PLC0415

    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        status = _cli.main(["demo"], out=io.StringIO())
    assert status == 1, status
    assert 'pip install "bpart-auth[demo]"' in errors.getvalue(), errors.getvalue()
    print("demo without its extra: a clear message")


def sqlite() -> None:
    from bpart_auth import SQLStore  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        store = SQLStore(f"sqlite:///{Path(folder) / 'smoke.db'}", create_schema=True)
        try:
            assert store.find_account_by_email("ann@example.com") is None
            assert store.schema_version() > 0
        finally:
            store.close()
    print("sqlite: SQLStore created its schema and answered a query")


def postgres() -> None:
    # psycopg without the binary wheel: it loads the system's libpq (the extra must
    # not force psycopg-binary on anyone).
    assert importlib.util.find_spec("psycopg_binary") is None, "postgres pulled psycopg-binary"
    import psycopg  # noqa: PLC0415

    from bpart_auth import SQLStore, StoreUnavailable  # noqa: PLC0415

    # Port 1: nothing listens, so this checks the driver loads and its failure
    # becomes a StoreUnavailable, without needing a server.
    store = SQLStore("postgresql://smoke@127.0.0.1:1/smoke", engine_options={"pool_size": 1})
    try:
        store.schema_version()
    except StoreUnavailable as error:
        assert error.code == "store_unavailable", error.code
    else:
        raise AssertionError("a PostgreSQL store on a closed port answered")
    finally:
        store.close()
    print(f"postgres: psycopg {psycopg.__version__} ({psycopg.pq.__impl__} libpq), errors mapped")


def redis() -> None:
    from bpart_auth import StoreUnavailable  # noqa: PLC0415
    from bpart_auth.guards import RedisGuard  # noqa: PLC0415
    from bpart_auth.throttling import RedisThrottle  # noqa: PLC0415

    # Nothing connects until the first call; port 1 makes that call fail fast.
    guard = RedisGuard("redis://127.0.0.1:1/0", timeout=0.5)
    RedisThrottle("redis://127.0.0.1:1/0")
    try:
        guard.consume(purpose="smoke", key="key", expires_at=_in_a_minute())
    except StoreUnavailable:
        pass
    else:
        raise AssertionError("a Redis guard on a closed port answered")
    print("redis: RedisGuard and RedisThrottle built, errors mapped")


def _in_a_minute():  # noqa: ANN202
    import datetime as dt  # noqa: PLC0415

    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)


def async_() -> None:
    import anyio  # noqa: PLC0415

    from bpart_auth import Auth, MemoryStore  # noqa: PLC0415
    from bpart_auth.aio import AsyncAuth  # noqa: PLC0415
    from bpart_auth.testing import CHEAP_FOR_TESTS  # noqa: PLC0415

    auth = AsyncAuth(Auth(MemoryStore(), password_hashing=CHEAP_FOR_TESTS))
    password = "correct horse battery staple"

    async def main() -> None:
        ann = await auth.create_account(email="ann@example.com", password=password)
        signed_in = await auth.passwords.sign_in("ann@example.com", password)
        assert signed_in == ann

    anyio.run(main)
    print("async: AsyncAuth signed in with a password")


def flask() -> None:
    import flask as flask_module  # noqa: PLC0415

    from bpart_auth.flask import FlaskAuth  # noqa: PLC0415

    assert FlaskAuth
    print(f"flask: bpart_auth.flask on Flask {_version('flask')} ({flask_module.__name__})")


def django() -> None:
    from bpart_auth.django import AuthMiddleware  # noqa: PLC0415

    assert AuthMiddleware
    print(f"django: bpart_auth.django on Django {_version('django')}")


def starlette() -> None:
    from starlette.middleware.sessions import SessionMiddleware  # noqa: PLC0415 - itsdangerous

    from bpart_auth.starlette import StarletteAuth  # noqa: PLC0415

    assert SessionMiddleware
    assert StarletteAuth
    print(f"starlette: bpart_auth.starlette on Starlette {_version('starlette')}")


def mfa() -> None:
    from bpart_auth import passkeys, totp  # noqa: PLC0415

    secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, account_name="ann@example.com", issuer="Smoke")
    assert totp.qr_svg(uri).lstrip().startswith("<"), "no SVG"
    assert passkeys.RelyingParty
    print("mfa: TOTP secret, provisioning URI and QR code; passkeys imported")


def demo() -> None:
    from bpart_auth import _demo  # noqa: PLC0415 - imports Flask

    assert _demo.main
    sqlite()
    mfa()
    print("demo: every module the demo needs imports")


def sql() -> None:
    sqlite()
    postgres()


def _version(distribution: str) -> str:
    import importlib.metadata  # noqa: PLC0415

    return importlib.metadata.version(distribution)


CHECKS = {
    "": bare,
    "sqlite": sqlite,
    "postgres": postgres,
    "sql": sql,
    "redis": redis,
    "async": async_,
    "flask": flask,
    "django": django,
    "starlette": starlette,
    "mfa": mfa,
    "demo": demo,
}

if __name__ == "__main__":
    extra = sys.argv[1] if len(sys.argv) > 1 else ""
    CHECKS[extra]()
