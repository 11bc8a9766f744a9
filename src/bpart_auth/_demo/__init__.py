"""`bpart-auth demo`: a small back office on http://localhost:8000 to click through.

SQLite store, a seeded admin, second factors (authenticator apps, recovery codes,
passkeys), and the fake Google and Microsoft from `bpart_auth.testing` with sign-in
pages served by the demo itself. Real client ids in the environment switch a provider
to the real one:

- `GOOGLE_CLIENT_ID` and `GOOGLE_CLIENT_SECRET`;
- `MICROSOFT_CLIENT_ID`, `MICROSOFT_CLIENT_SECRET` and optionally `MICROSOFT_TENANT`
  (default `organizations`).

Register `http://localhost:8000/auth/callback` (with the port you use) as the redirect
URI. Needs the `demo` extra (Flask, SQLAlchemy, responses, pyotp, segno, webauthn).

The demo's address is `localhost`, not `127.0.0.1`: browsers refuse an IP address as
a passkey's relying-party id, and Entra's admin center takes a plain-http redirect URI
only with `localhost`. It still listens on 127.0.0.1 only (browsers resolve
`localhost` to loopback themselves), and sends a browser that opened another host
there first, so the session cookie and the callback share one host.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bpart_auth.auth import Auth
from bpart_auth.errors import ConfigurationError, EmailAlreadyRegistered
from bpart_auth.providers.google import GoogleProvider
from bpart_auth.providers.microsoft import MicrosoftProvider
from bpart_auth.services.second_factors import SecondFactorPolicy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from flask import Flask

    from bpart_auth._demo.fakes import DemoFakes
    from bpart_auth.passkeys import RelyingParty
    from bpart_auth.providers.base import Provider
    from bpart_auth.store.sql import SQLStore

__all__ = ["ADMIN_EMAIL", "ADMIN_PASSWORD", "Demo", "build", "main"]

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "back office demo password"  # noqa: S105 - shown on the demo's sign-in page
HOST = "localhost"
"""The demo's host name: a passkey's relying-party id must be a name, never an IP address."""


@dataclass
class Demo:
    """A built demo: the Flask app and what it runs on."""

    app: Flask
    auth: Auth
    store: SQLStore
    base_url: str
    fakes: DemoFakes | None
    providers: dict[str, Provider] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        """Stop the fakes and close the store."""
        if self.fakes is not None:
            self.fakes.stop()
        self.store.close()


def build(
    *,
    port: int = 8000,
    database: str | None = None,
    environ: Mapping[str, str] | None = None,
    providers: list[Provider] | None = None,
    admin_email: str = ADMIN_EMAIL,
    host: str = HOST,
) -> Demo:
    """Build the demo (seeded store, providers, app) without serving it.

    Args:
        port: The loopback port it will be served on (part of the callback URL).
        database: A SQLAlchemy URL; by default a fresh SQLite file in a temporary folder.
        environ: Where real client ids are read; defaults to `os.environ`.
        providers: Use these providers instead (the browser tests pass ones pointed at
            oidc-provider); no fakes are started then.
        admin_email: The seeded admin's email.
        host: The host name browsers use (`localhost`); with an IP address
            (`127.0.0.1`, as an identity provider may have registered) the demo works
            but offers no passkeys, which browsers refuse on an IP address.
    """
    from bpart_auth._demo.app import create_app  # noqa: PLC0415 - needs Flask
    from bpart_auth._demo.fakes import DemoFakes  # noqa: PLC0415
    from bpart_auth.store.sql import SQLStore  # noqa: PLC0415 - needs SQLAlchemy

    base_url = f"http://{host}:{port}"
    env = os.environ if environ is None else environ
    fakes: DemoFakes | None = None
    modes: dict[str, str] = {}
    if providers is None:
        fakes = DemoFakes(base_url)
        google, microsoft = fakes.providers()
        providers = [_real_google(env) or google, _real_microsoft(env) or microsoft]
        modes = {p.name: "fake" if p in (google, microsoft) else "real" for p in providers}
        if "fake" not in modes.values():
            fakes = None
    if database is None:
        folder = Path(tempfile.mkdtemp(prefix="bpart-auth-demo-"))
        database = f"sqlite:///{folder / 'demo.db'}"
    store = SQLStore(database, create_schema=True)
    relying_party = _relying_party(host, base_url)
    auth = Auth(
        store,
        secret_key=secrets.token_bytes(32),
        providers=providers,
        redirect_uri=f"{base_url}/auth/callback",
        second_factor=SecondFactorPolicy(issuer="bpart_auth demo", relying_party=relying_party),
    )
    try:
        with contextlib.suppress(EmailAlreadyRegistered):  # a database kept from a past run
            auth.create_account(email=admin_email, password=ADMIN_PASSWORD, name="Ada Admin")
    except BaseException:  # the database cannot be reached: let go of the pool
        store.close()
        raise
    if fakes is not None:
        fakes.start()
    hint = f"Demo admin: {admin_email} / {ADMIN_PASSWORD}"
    app = create_app(
        auth,
        secret_key=secrets.token_hex(32),
        fakes=fakes,
        hint=hint,
        base_url=base_url,
        passkeys=relying_party is not None,
    )
    return Demo(
        app=app,
        auth=auth,
        store=store,
        base_url=base_url,
        fakes=fakes,
        providers={provider.name: provider for provider in providers},
        modes=modes,
    )


def _relying_party(host: str, base_url: str) -> RelyingParty | None:
    """Passkeys' relying party on a host name; None (no passkeys) on an IP address."""
    from bpart_auth.passkeys import RelyingParty  # noqa: PLC0415 - the mfa extra

    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return None
    return RelyingParty(host, "bpart_auth demo", [base_url])


def _real_google(env: Mapping[str, str]) -> GoogleProvider | None:
    client_id, secret = env.get("GOOGLE_CLIENT_ID"), env.get("GOOGLE_CLIENT_SECRET")
    if not client_id:
        return None
    if not secret:
        raise ConfigurationError(detail="GOOGLE_CLIENT_ID is set but GOOGLE_CLIENT_SECRET is not")
    return GoogleProvider(client_id=client_id, client_secret=secret)


def _real_microsoft(env: Mapping[str, str]) -> MicrosoftProvider | None:
    client_id, secret = env.get("MICROSOFT_CLIENT_ID"), env.get("MICROSOFT_CLIENT_SECRET")
    if not client_id:
        return None
    if not secret:
        raise ConfigurationError(
            detail="MICROSOFT_CLIENT_ID is set but MICROSOFT_CLIENT_SECRET is not"
        )
    tenant = env.get("MICROSOFT_TENANT", "organizations")
    return MicrosoftProvider(client_id=client_id, client_secret=secret, tenant=tenant)


def main(*, port: int = 8000, database: str | None = None, out: TextIO | None = None) -> int:
    """Build the demo and serve it on 127.0.0.1 (as `localhost`) until interrupted."""
    from werkzeug.serving import make_server  # noqa: PLC0415 - comes with Flask

    stream = out if out is not None else sys.stdout
    demo = build(port=port, database=database)
    try:
        server = make_server("127.0.0.1", port, demo.app, threaded=True)
    except (OSError, SystemExit) as exc:  # werkzeug exits when the port is taken
        demo.close()
        reason = exc.strerror if isinstance(exc, OSError) else "the port is in use"
        stream.write(f"bpart-auth demo: cannot listen on 127.0.0.1:{port}: {reason}\n")
        return 1
    modes = ", ".join(f"{name}: {mode}" for name, mode in demo.modes.items()) or "custom"
    stream.write(
        f"bpart_auth demo on {demo.base_url}  (providers: {modes})\n"
        f"Sign in as {ADMIN_EMAIL} with the password '{ADMIN_PASSWORD}'.\n"
        "Press Ctrl+C to stop.\n"
    )
    stream.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        demo.close()
    return 0
