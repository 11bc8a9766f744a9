"""Sign in with Microsoft, end to end: msal's real code path against oidc-provider."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bpart_auth import (
    AdminConsentRequired,
    Auth,
    ConsentDeclined,
    IdentityNotLinked,
    InvalidFlowState,
    MicrosoftProvider,
    SQLStore,
    TenantNotAllowed,
)
from bpart_auth.testing import CHEAP_FOR_TESTS

from .oidc_fixture import CONSUMER_TENANT, MICROSOFT_ACCOUNTS, WORK_TENANT

pytestmark = pytest.mark.e2e

SECRET = "an e2e secret key that is long enough!"
WORK = MICROSOFT_ACCOUNTS["work"]


def microsoft(server, **settings):
    client = server.microsoft_client
    settings.setdefault("tenant", "organizations")
    return MicrosoftProvider(
        client_id=client.client_id,
        client_secret=client.client_secret,
        authority_host=f"{server.origin}/microsoft",
        session=server.session(),
        **settings,
    )


@pytest.fixture
def store(tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'auth.db'}", create_schema=True)
    yield store
    store.close()


def make_auth(server, store, **settings):
    return Auth(
        store,
        secret_key=SECRET,
        providers=[microsoft(server, **settings)],
        password_hashing=CHEAP_FOR_TESTS,
    )


def sign_in(server, auth, login):
    start = auth.begin_sign_in("microsoft", redirect_uri=server.redirect_uri)
    params = server.authorize(start.url, login=login)
    return auth.complete(sealed_flow=start.sealed_flow, params=params)


def test_refused_before_linking_even_with_the_same_email_then_works_once_linked(oidc_server, store):
    from bpart_auth import Identity  # noqa: PLC0415

    auth = make_auth(oidc_server, store)
    ann = auth.create_account(email=WORK["email"])  # same email as the Microsoft account
    with pytest.raises(IdentityNotLinked) as caught:
        sign_in(oidc_server, auth, "work")
    assert "link Microsoft from your profile" in str(caught.value)
    assert list(store.list_identities(ann.id)) == []

    store.link_identity(
        account_id=ann.id,
        identity=Identity("microsoft", WORK_TENANT, WORK["oid"]),
        email=None,
        now=datetime.now(timezone.utc),
    )
    outcome = sign_in(oidc_server, auth, "work")
    assert (outcome.kind, outcome.account.id) == ("signed_in", ann.id)
    assert outcome.identity == Identity("microsoft", WORK_TENANT, WORK["oid"])


@pytest.mark.parametrize(
    ("login", "provider_code"),
    [("needs-admin", "AADSTS65001"), ("admin-approval", "AADSTS90094")],
)
def test_admin_consent_required_carries_the_consent_url(oidc_server, store, login, provider_code):
    auth = make_auth(oidc_server, store)
    with pytest.raises(AdminConsentRequired) as caught:
        sign_in(oidc_server, auth, login)
    error = caught.value
    assert error.provider_code == provider_code
    client_id = oidc_server.microsoft_client.client_id
    assert error.consent_url == (
        f"{oidc_server.origin}/microsoft/organizations/adminconsent?client_id={client_id}"
    )
    assert "IT department" in str(error)


def test_declined_consent(oidc_server, store):
    auth = make_auth(oidc_server, store)
    with pytest.raises(ConsentDeclined) as caught:
        sign_in(oidc_server, auth, "decline")
    assert caught.value.provider_code == "AADSTS65004"


def test_personal_accounts_follow_the_tenant_setting(oidc_server, store):
    # "organizations" refuses them at the login itself (as Entra does); the token-level
    # refusal is in tests/test_microsoft.py.
    for tenant in ("common", "consumers"):
        with pytest.raises(IdentityNotLinked):  # allowed, just not linked
            sign_in(oidc_server, make_auth(oidc_server, store, tenant=tenant), "personal")


def test_tenant_allow_list(oidc_server, store):
    auth = make_auth(oidc_server, store, tenant="common", allowed_tenants=[CONSUMER_TENANT])
    with pytest.raises(TenantNotAllowed):
        sign_in(oidc_server, auth, "work")


def test_tampered_and_replayed_state_are_refused(oidc_server, store):
    from bpart_auth import Identity  # noqa: PLC0415

    auth = make_auth(oidc_server, store)
    ann = auth.create_account(email="ann@example.com")
    store.link_identity(
        account_id=ann.id,
        identity=Identity("microsoft", WORK_TENANT, WORK["oid"]),
        email=None,
        now=datetime.now(timezone.utc),
    )
    start = auth.begin_sign_in("microsoft", redirect_uri=oidc_server.redirect_uri)
    params = oidc_server.authorize(start.url, login="work")
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=start.sealed_flow[:-3] + "xyz", params=params)
    assert auth.complete(sealed_flow=start.sealed_flow, params=params).account.id == ann.id
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=start.sealed_flow, params=params)


def test_states_swapped_between_providers_are_refused(oidc_server, store):
    from .test_google_e2e import google  # noqa: PLC0415

    auth = Auth(
        store,
        secret_key=SECRET,
        providers=[google(oidc_server), microsoft(oidc_server)],
        password_hashing=CHEAP_FOR_TESTS,
    )
    google_start = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    microsoft_start = auth.begin_sign_in("microsoft", redirect_uri=oidc_server.redirect_uri)
    microsoft_params = oidc_server.authorize(microsoft_start.url, login="work")
    google_params = oidc_server.authorize(google_start.url, login="ann")
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=google_start.sealed_flow, params=microsoft_params)
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=microsoft_start.sealed_flow, params=google_params)
    # A Microsoft callback carrying the Google flow's state: the Google issuer is expected.
    forged = {**microsoft_params, "state": google_params["state"]}
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=google_start.sealed_flow, params=forged)


def test_a_single_tenant_app_pins_its_tenant(oidc_server, store):
    from bpart_auth import Identity  # noqa: PLC0415

    auth = make_auth(oidc_server, store, tenant=WORK_TENANT)
    ann = auth.create_account(email="ann@example.com")
    store.link_identity(
        account_id=ann.id,
        identity=Identity("microsoft", WORK_TENANT, WORK["oid"]),
        email=None,
        now=datetime.now(timezone.utc),
    )
    # oidc-provider names the tenant's own issuer, and sends RFC 9207 `iss` back.
    outcome = sign_in(oidc_server, auth, "work")
    assert (outcome.kind, outcome.account.id) == ("signed_in", ann.id)
