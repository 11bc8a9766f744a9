"""One connection per provider: ten sign-ins over HTTPS open one TCP (TLS) connection.

Against oidc-provider on loopback over HTTPS (tests/e2e/oidc_fixture.py: a throwaway CA),
a provider's discovery, keys and every code exchange reuse the one kept-alive
connection of the `requests.Session` the app gave it. The session is an app's plain
one: `verify` is the test CA and `trust_env` stays on, with `REQUESTS_CA_BUNDLE`
pointing elsewhere, so the custom `verify` must win over the environment for every
request, keys included, or TLS fails. Connections are counted where urllib3 opens them,
in the pool of that session's adapter; the login forms the test plays go through
another session and are not counted.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
import urllib3
from requests.adapters import HTTPAdapter

from bpart_auth import Auth, GoogleProvider, Identity, MicrosoftProvider, SQLStore
from bpart_auth.testing import CHEAP_FOR_TESTS

from .oidc_fixture import MICROSOFT_ACCOUNTS, WORK_TENANT

pytestmark = pytest.mark.e2e

SECRET = "an e2e secret key that is long enough!"
SIGN_INS = 10


class CountingConnection(urllib3.connection.HTTPSConnection):
    opened: list[tuple[str, int]]  # set per adapter: (host, port) of each TCP connect

    def connect(self) -> None:
        self.opened.append((self.host, self.port))
        super().connect()


def counting_session(ca_bundle: str) -> tuple[requests.Session, list[tuple[str, int]]]:
    """An app's session with the test CA; every TCP connection it opens is recorded."""
    opened: list[tuple[str, int]] = []
    connection = type("Connection", (CountingConnection,), {"opened": opened})
    pool = type("Pool", (urllib3.HTTPSConnectionPool,), {"ConnectionCls": connection})
    adapter = HTTPAdapter()
    adapter.poolmanager.pool_classes_by_scheme = {
        "http": urllib3.HTTPConnectionPool,
        "https": pool,
    }
    session = requests.Session()
    session.mount("https://", adapter)
    session.verify = ca_bundle
    return session, opened


@pytest.fixture
def app_environment(monkeypatch, tmp_path):
    """trust_env on, as in most apps: a CA bundle elsewhere, and no proxy for loopback."""
    other_ca = tmp_path / "not-the-test-ca.pem"
    other_ca.write_text("")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def store(tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'auth.db'}", create_schema=True)
    yield store
    store.close()


@pytest.mark.usefixtures("app_environment")
def test_ten_google_sign_ins_open_one_connection(oidc_server, store):
    session, opened = counting_session(oidc_server.ca_bundle)
    client = oidc_server.google_client
    provider = GoogleProvider(
        client_id=client.client_id,
        client_secret=client.client_secret,
        metadata_url=f"{oidc_server.google_issuer}/.well-known/openid-configuration",
        session=session,
    )
    auth = Auth(store, secret_key=SECRET, providers=[provider], password_hashing=CHEAP_FOR_TESTS)
    ann = auth.create_account(email="ann@example.com", name="Ann")
    for _ in range(SIGN_INS):
        start = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
        params = oidc_server.authorize(start.url, login="ann")
        outcome = auth.complete(sealed_flow=start.sealed_flow, params=params)
        assert outcome.account.id == ann.id
    assert len(opened) == 1, opened


@pytest.mark.usefixtures("app_environment")
def test_ten_microsoft_sign_ins_open_one_connection(oidc_server, store):
    session, opened = counting_session(oidc_server.ca_bundle)
    client = oidc_server.microsoft_client
    provider = MicrosoftProvider(
        client_id=client.client_id,
        client_secret=client.client_secret,
        tenant="organizations",
        authority_host=f"{oidc_server.origin}/microsoft",
        session=session,
    )
    auth = Auth(store, secret_key=SECRET, providers=[provider], password_hashing=CHEAP_FOR_TESTS)
    ann = auth.create_account(email="ann@contoso.example", name="Ann")
    work = MICROSOFT_ACCOUNTS["work"]
    store.link_identity(
        account_id=ann.id,
        identity=Identity("microsoft", WORK_TENANT, work["oid"]),
        email=None,
        now=datetime.now(timezone.utc),
    )
    for _ in range(SIGN_INS):
        start = auth.begin_sign_in("microsoft", redirect_uri=oidc_server.redirect_uri)
        params = oidc_server.authorize(start.url, login="work")
        outcome = auth.complete(sealed_flow=start.sealed_flow, params=params)
        assert outcome.account.id == ann.id
    assert len(opened) == 1, opened
