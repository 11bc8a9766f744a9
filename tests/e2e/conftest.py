"""End-to-end fixtures: a real OpenID provider (oidc-provider) on loopback.

`oidc_server` starts tests/e2e/oidc/server.mjs once per test session with the settings
of `oidc_settings`; override `oidc_settings` (session-scoped) in a conftest.py to change
clients or accounts for every test under it. For a server with other settings next to
it, use `running_oidc_server(settings, tmp_path_factory.mktemp(...))` in a fixture of
your own.
"""

from __future__ import annotations

import pytest

from .oidc_fixture import OidcServer, OidcSettings, running_oidc_server


@pytest.fixture(scope="session")
def oidc_settings() -> OidcSettings:
    return OidcSettings()


@pytest.fixture(scope="session")
def oidc_server(oidc_available, oidc_settings, tmp_path_factory) -> OidcServer:
    with running_oidc_server(oidc_settings, tmp_path_factory.mktemp("oidc")) as server:
        yield server
