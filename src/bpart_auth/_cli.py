"""The `bpart-auth` console script: what an operator does outside the app."""

from __future__ import annotations

import argparse
import inspect
import sys
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, TextIO

from bpart_auth import errors
from bpart_auth._version import __version__
from bpart_auth.models import Account, Identity, Invite

if TYPE_CHECKING:
    from collections.abc import Sequence


def error_catalogue() -> list[tuple[str, str, str]]:
    """Every error class as (code, class name, default end-user message), tree order."""
    rows: list[tuple[str, str, str]] = []
    for name in errors.__all__:
        value = getattr(errors, name)
        if inspect.isclass(value) and issubclass(value, errors.AuthError):
            rows.append((value.code, name, value.default_message))
    return rows


def _print_errors(out: TextIO) -> int:
    rows = error_catalogue()
    width = max(len(code) for code, _, _ in rows)
    out.writelines(f"{code:<{width}}  {name}: {message}\n" for code, name, message in rows)
    return 0


def _print_walkthrough(out: TextIO) -> int:
    """Exercise what the package offers today, for the README's first command."""
    now = datetime.now(timezone.utc)
    admin = Account(
        id="demo-admin",
        email="admin@example.com",
        name="Demo Admin",
        created_at=now,
        credentials_changed_at=now,
    )
    identity = Identity("microsoft", "9188040d-6c67-4c5b-b112-36a304b66dad", "demo-oid")
    invite = Invite(
        id="demo-invite",
        email="ann@example.com",
        invited_by=admin.id,
        created_at=now,
        expires_at=now + timedelta(days=7),
    )
    out.write(f"bpart_auth {__version__}\n\n")
    out.write(f"account:  {admin}\n")
    out.write(f"identity: {identity}\n")
    out.write(f"invite:   {invite.email} is {invite.status(now)}, ")
    out.write(f"{invite.status(now + timedelta(days=8))} a week later\n\n")
    try:
        raise errors.IdentityNotLinked(provider=identity.provider)
    except errors.AuthError as error:
        out.write(f"an app shows the user: [{error.code}] {error}\n\n")
    out.write(
        "The web demo (passwords, Google, Microsoft, invitations, linking) is being built;\n"
        "run `bpart-auth errors` for every error code an app can meet.\n"
    )
    return 0


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the console script.

    Args:
        argv: Arguments without the program name; defaults to `sys.argv[1:]`.
        out: Where to write; defaults to standard output.

    Returns:
        The process exit status.
    """
    stream = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(
        prog="bpart-auth", description="Operate a bpart_auth installation."
    )
    parser.add_argument("--version", action="version", version=f"bpart-auth {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("errors", help="list every error code with its end-user message")
    commands.add_parser("demo", help="show what the package does")
    arguments = parser.parse_args(argv)
    if arguments.command == "errors":
        return _print_errors(stream)
    return _print_walkthrough(stream)


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    raise SystemExit(main())
