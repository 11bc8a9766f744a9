"""The `bpart-auth` console script: what an operator does outside the app.

Its reader is an operator at a terminal, not a user of the app: a failure prints
`bpart-auth: <code>: ` and what failed and what to run or fix, on standard error,
and exits with status 1 (2 for a usage error, as argparse does); never a traceback
for an `AuthError`.
"""

from __future__ import annotations

import argparse
import getpass
import inspect
import sys
from importlib.util import find_spec
from typing import TYPE_CHECKING, TextIO

from bpart_auth import errors
from bpart_auth._version import __version__
from bpart_auth.auth import Auth

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bpart_auth.store.sql import SQLStore


def error_catalogue() -> list[tuple[str, str, str]]:
    """Every error code's end-user message templates: (code, class, template), tree order.

    A template's `{placeholders}` name the error's attributes that fill it
    (`{provider}` with the provider's display name). A code with more than one message
    gets a row per other message, its class column saying when that one is used:
    `TooManyAttempts` for one minute, `TenantNotAllowed` for a personal Microsoft
    account where only work and school accounts may sign in, and `ProviderError` with
    the message Microsoft errors get by their AADSTS code (`provider_code`).
    """
    # The AADSTS messages live beside their mapping.
    from bpart_auth.providers._entra_errors import AADSTS_MESSAGES  # noqa: PLC0415

    rows: list[tuple[str, str, str]] = []
    for name, value in vars(errors).items():  # definition order: the tree's order
        if inspect.isclass(value) and issubclass(value, errors.AuthError):
            rows.append((value.code, name, value.default_message))
            if value is errors.TooManyAttempts:
                rows.append((value.code, f"{name} (1 minute)", value.one_minute_message))
            if value is errors.TenantNotAllowed:
                message = value.personal_account_message
                rows.append((value.code, f"{name} (personal Microsoft account)", message))
            if value is errors.ProviderError:
                rows.extend(
                    (value.code, f"{name} (microsoft, provider_code AADSTS{number})", message)
                    for number, message in sorted(AADSTS_MESSAGES.items())
                )
    return rows


def _print_errors(out: TextIO) -> int:
    rows = error_catalogue()
    width = max(len(code) for code, _, _ in rows)
    out.writelines(f"{code:<{width}}  {name}: {message}\n" for code, name, message in rows)
    return 0


def _demo(arguments: argparse.Namespace, out: TextIO) -> int:
    missing = [
        name
        for name in ("flask", "sqlalchemy", "responses", "pyotp", "segno", "webauthn")
        if not find_spec(name)
    ]
    if missing:
        raise errors.ConfigurationError(
            detail=f'the demo needs {", ".join(missing)}: pip install "bpart-auth[demo]"'
        )
    from bpart_auth import _demo  # noqa: PLC0415 - imports Flask

    return _demo.main(port=arguments.port, database=arguments.database, out=out)


def _open_store(url: str) -> SQLStore:
    try:
        from bpart_auth.store.sql import SQLStore  # noqa: PLC0415 - needs the sqlite or postgres extra
    except ImportError as exc:
        raise errors.ConfigurationError(
            detail='SQLAlchemy is missing: pip install "bpart-auth[sqlite]" (or [postgres])'
        ) from exc
    return SQLStore(url)


def _require_current_schema(store: SQLStore) -> None:
    """Refuse, saying what to run, unless the schema is the one this bpart-auth uses."""
    from bpart_auth.store._migrations import require_current  # noqa: PLC0415 - the sqlite or postgres extra

    require_current(store.schema_version())


def _migrate(url: str, out: TextIO) -> int:
    store = _open_store(url)
    try:
        before = store.schema_version()
        after = store.upgrade_schema()
    finally:
        store.close()
    if before == after:
        out.write(f"schema is up to date (version {after})\n")
    else:
        out.write(f"schema upgraded from version {before} to {after}\n")
    return 0


def _read_password(stdin: TextIO, err: TextIO) -> str:
    """The new account's password, from standard input and never from the arguments.

    At a terminal it is asked twice without echo; from a pipe the first line is read.
    """
    if stdin.isatty():
        first = getpass.getpass("Password: ", stream=err)
        if getpass.getpass("Password (again): ", stream=err) != first:
            raise errors.InvalidInput("The two passwords differ.", field="password")
        return first
    return stdin.readline().rstrip("\r\n")


def _create_account(arguments: argparse.Namespace, out: TextIO, stdin: TextIO) -> int:
    store = _open_store(arguments.url)
    try:
        _require_current_schema(store)  # before asking for a password in vain
        password = None if arguments.no_password else _read_password(stdin, sys.stderr)
        auth = Auth(store)
        account = auth.create_account(email=arguments.email, password=password, name=arguments.name)
    finally:
        store.close()
    out.write(f"created account {account.id} <{account.email}>\n")
    return 0


def _database(url: str | None) -> str:
    """The database a URL names, for an operator: never its password."""
    if url is None:
        return "the demo's SQLite file"
    from bpart_auth.store._engine import parse_store_url  # noqa: PLC0415 - the sqlite or postgres extra

    parsed = parse_store_url(url)  # it parsed once already, or there is no store error
    if parsed.get_backend_name() == "sqlite":
        return f"the SQLite file {parsed.database}"
    return f"the database at {parsed.render_as_string(hide_password=True)}"


def _for_operator(error: errors.AuthError, arguments: argparse.Namespace) -> str:
    """What failed and what to do about it, for whoever typed the command."""
    detail = f" ({error.detail})" if error.detail else ""
    given = vars(arguments)
    if isinstance(error, errors.StoreUnavailable):
        database = _database(given.get("url", given.get("database")))
        if database.startswith("the SQLite file"):
            advice = "check that its folder exists and that this user may write there"
        else:
            advice = "check the URL, and that the server is running and accepts connections"
        return f"cannot use {database}{detail}: {advice}"
    if isinstance(error, errors.ConfigurationError):
        return error.detail or str(error)
    if isinstance(error, errors.EmailAlreadyRegistered):
        return f"an account with the email {given['email']} already exists; nothing was created"
    if isinstance(error, errors.InvalidInput):
        option = {"email": "--email", "name": "--name", "password": "the password"}
        refused = option.get(error.field or "", "the input")
        reason = str(error).rstrip(".")
        return f"{refused} was refused: {reason}{detail}; nothing was created"
    return f"{error}{detail}"


def main(
    argv: Sequence[str] | None = None,
    *,
    out: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    """Run the console script.

    Args:
        argv: Arguments without the program name; defaults to `sys.argv[1:]`.
        out: Where to write; defaults to standard output.
        stdin: Where `create-account` reads the password; defaults to standard input.

    Returns:
        The process exit status.
    """
    stream = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(
        prog="bpart-auth", description="Operate a bpart_auth installation."
    )
    parser.add_argument("--version", action="version", version=f"bpart-auth {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("errors", help="list every error code with its end-user message template")
    demo = commands.add_parser(
        "demo", help="serve a back office to click through on http://localhost:8000"
    )
    demo.add_argument("--port", type=int, default=8000, help="loopback port (default 8000)")
    demo.add_argument(
        "--database", help="SQLAlchemy URL to keep the data (default: a fresh SQLite file)"
    )
    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("url", help="SQLAlchemy URL, e.g. sqlite:///bpart_auth.db")
    create = commands.add_parser(
        "create-account",
        help="create an account (the first admin); the password is read from standard input",
    )
    create.add_argument("url", help="SQLAlchemy URL of a migrated database")
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="")
    create.add_argument(
        "--no-password",
        action="store_true",
        help="an account that signs in only with a linked Google or Microsoft identity",
    )
    arguments = parser.parse_args(argv)
    try:
        if arguments.command == "errors":
            return _print_errors(stream)
        if arguments.command == "migrate":
            return _migrate(arguments.url, stream)
        if arguments.command == "create-account":
            return _create_account(arguments, stream, stdin if stdin is not None else sys.stdin)
        return _demo(arguments, stream)
    except errors.AuthError as error:
        sys.stderr.write(f"bpart-auth: {error.code}: {_for_operator(error, arguments)}\n")
        return 1


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    raise SystemExit(main())
