"""Sign in with Google, end to end: bpart_auth against oidc-provider over HTTPS."""

from __future__ import annotations

import pytest

from bpart_auth import (
    Auth,
    ConsentDeclined,
    EmailNotVerified,
    GoogleProvider,
    HostedDomainNotAllowed,
    IdentityNotLinked,
    InvalidFlowState,
    InvalidReturnTo,
    SQLStore,
)
from bpart_auth.testing import CHEAP_FOR_TESTS

pytestmark = pytest.mark.e2e

SECRET = "an e2e secret key that is long enough!"
PASSWORD = "correct horse battery staple"


def google(server, **settings):
    client = server.google_client
    return GoogleProvider(
        client_id=client.client_id,
        client_secret=client.client_secret,
        metadata_url=f"{server.google_issuer}/.well-known/openid-configuration",
        session=server.session(),
        **settings,
    )


@pytest.fixture
def store(tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'auth.db'}", create_schema=True)
    yield store
    store.close()


@pytest.fixture
def auth(oidc_server, store):
    auth = Auth(
        store, secret_key=SECRET, providers=[google(oidc_server)], password_hashing=CHEAP_FOR_TESTS
    )
    auth.create_account(email="ann@example.com", password=PASSWORD, name="Ann")
    return auth


def sign_in(server, auth, login, **begin):
    start = auth.begin_sign_in("google", redirect_uri=server.redirect_uri, **begin)
    params = server.authorize(start.url, login=login)
    return auth.complete(sealed_flow=start.sealed_flow, params=params)


def test_first_sign_in_by_verified_email_then_by_remembered_identity(oidc_server, auth, store):
    first = sign_in(oidc_server, auth, "ann", return_to="/profile?tab=security")
    assert first.kind == "signed_in"
    assert first.account.email == "ann@example.com"
    assert first.return_to == "/profile?tab=security"
    assert first.identity.subject == "100000000000000000001"
    assert first.identity.issuer == oidc_server.google_issuer
    assert store.find_account_by_identity(first.identity).id == first.account.id

    # The email changes; the remembered identity still signs in.
    store.update_account(first.account.id, email="ann.renamed@example.com")
    again = sign_in(oidc_server, auth, "ann")
    assert again.account.id == first.account.id
    assert again.return_to is None


def test_unverified_email_is_refused(oidc_server, auth):
    auth.create_account(email="unverified@example.com", password=PASSWORD)
    with pytest.raises(EmailNotVerified) as caught:
        sign_in(oidc_server, auth, "unverified")
    assert caught.value.code == "email_not_verified"


def test_unknown_email_is_refused(oidc_server, auth):
    with pytest.raises(IdentityNotLinked) as caught:
        sign_in(oidc_server, auth, "consumer")
    assert caught.value.code == "identity_not_linked"


def test_declined_consent(oidc_server, auth):
    with pytest.raises(ConsentDeclined) as caught:
        sign_in(oidc_server, auth, "decline")
    assert (caught.value.code, caught.value.provider_code) == ("consent_declined", "access_denied")


def test_hosted_domain_is_checked_against_the_hd_claim(oidc_server, store):
    auth = Auth(
        store,
        secret_key=SECRET,
        providers=[google(oidc_server, hosted_domains=["example.com"])],
        password_hashing=CHEAP_FOR_TESTS,
    )
    auth.create_account(email="carol@other.example", password=PASSWORD)
    with pytest.raises(HostedDomainNotAllowed):
        sign_in(oidc_server, auth, "other-hd")
    auth.create_account(email="ann@example.com", password=PASSWORD)
    assert sign_in(oidc_server, auth, "ann").account.email == "ann@example.com"


def test_tampered_state_is_refused(oidc_server, auth):
    start = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    params = oidc_server.authorize(start.url, login="ann")
    tampered = start.sealed_flow[:-4] + (
        "AAAA" if not start.sealed_flow.endswith("AAAA") else "BBBB"
    )
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=tampered, params=params)


def test_replayed_callback_is_refused(oidc_server, auth):
    start = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    params = oidc_server.authorize(start.url, login="ann")
    assert auth.complete(sealed_flow=start.sealed_flow, params=params).kind == "signed_in"
    with pytest.raises(InvalidFlowState) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params=params)
    assert "completed already" in caught.value.detail


def test_expired_state_is_refused(oidc_server, store):
    from datetime import datetime, timedelta, timezone  # noqa: PLC0415

    now = [datetime.now(timezone.utc)]
    auth = Auth(
        store,
        secret_key=SECRET,
        providers=[google(oidc_server)],
        password_hashing=CHEAP_FOR_TESTS,
        clock=lambda: now[0],
    )
    auth.create_account(email="ann@example.com", password=PASSWORD)
    start = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    params = oidc_server.authorize(start.url, login="ann")
    now[0] += timedelta(minutes=11)
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=start.sealed_flow, params=params)


def test_states_swapped_between_flows_are_refused(oidc_server, auth):
    first = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    second = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    params = oidc_server.authorize(first.url, login="ann")
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=second.sealed_flow, params=params)


def test_a_callback_from_another_issuer_is_refused(oidc_server, auth):
    start = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    params = dict(oidc_server.authorize(start.url, login="ann"))
    params["iss"] = oidc_server.microsoft_issuer()
    with pytest.raises(InvalidFlowState) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params=params)
    assert "iss" in caught.value.detail


@pytest.mark.parametrize(
    "return_to",
    ["https://evil.example/", "//evil.example/", "/\\evil.example", "/%2F%2Fevil.example"],
)
def test_absolute_or_protocol_relative_return_to_is_refused(oidc_server, auth, return_to):
    with pytest.raises(InvalidReturnTo):
        auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri, return_to=return_to)


@pytest.mark.parametrize(
    ("settings", "detail"),
    [
        pytest.param(
            {"issuer": "https://accounts.google.com"},
            "is not accounts.google.com or https://accounts.google.com",
            id="google-issuer-expected",
        ),
        pytest.param({"endpoint_hosts": ["localhost"]}, "is on 127.0.0.1", id="another-host"),
    ],
)
def test_oidc_providers_discovery_is_checked_against_the_pins(oidc_server, store, settings, detail):
    from bpart_auth import ProviderUnavailable  # noqa: PLC0415

    auth = Auth(store, secret_key=SECRET, providers=[google(oidc_server, **settings)])
    with pytest.raises(ProviderUnavailable) as caught:
        auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    assert detail in caught.value.detail
