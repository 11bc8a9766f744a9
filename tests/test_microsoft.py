"""MicrosoftProvider on FakeMicrosoft: msal's real code path, our own token checks."""

from __future__ import annotations

import socket
import time
from datetime import datetime, timezone

import pytest

from bpart_auth import (
    AdminConsentAnswered,
    AdminConsentRequired,
    Auth,
    ConfigurationError,
    ConsentDeclined,
    Identity,
    IdentityNotLinked,
    InvalidFlowState,
    InvalidIdToken,
    MemoryStore,
    MicrosoftProvider,
    ProviderError,
    TenantNotAllowed,
)
from bpart_auth.providers.microsoft import CONSUMER_TENANT
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeMicrosoft

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"
WORK = FakeMicrosoft.WORK_TENANT
OTHER = "99999999-8888-7777-6666-555555555555"
OID = "aaaaaaaa-0000-0000-0000-000000000001"
NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)


@pytest.fixture
def store():
    return MemoryStore()


def make(store, fake, **provider):
    auth = Auth(
        store,
        secret_key=SECRET,
        providers=[fake.provider(**provider)],
        password_hashing=CHEAP_FOR_TESTS,
    )
    ann = auth.create_account(email="ann@contoso.example")
    return auth, ann


def link(store, account, tenant=WORK, oid=OID):
    store.link_identity(
        account_id=account.id, identity=Identity("microsoft", tenant, oid), email=None, now=NOW
    )


def sign_in(auth, fake, **user):
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    return auth.complete(state=start.state, params=fake.authorize(start.url, **user))


@pytest.fixture
def organizations():
    with FakeMicrosoft(tenant="organizations") as fake:
        yield fake


def test_a_linked_identity_signs_in(store, organizations):
    auth, ann = make(store, organizations)
    link(store, ann)
    outcome = sign_in(auth, organizations)
    assert (outcome.kind, outcome.account.id) == ("signed_in", ann.id)
    assert outcome.identity == Identity("microsoft", WORK, OID)
    assert outcome.message == "You are signed in with Microsoft."


@pytest.mark.parametrize(
    "claim",
    [
        pytest.param({"email": "ann@contoso.example"}, id="email"),
        pytest.param({"preferred_username": "ann@contoso.example"}, id="preferred_username"),
        pytest.param({"upn": "ann@contoso.example"}, id="upn"),
        pytest.param({"email": "ann@contoso.example", "email_verified": True}, id="verified"),
    ],
)
def test_no_email_claim_ever_finds_an_account(store, organizations, claim):
    auth, ann = make(store, organizations)
    with pytest.raises(IdentityNotLinked) as caught:
        sign_in(auth, organizations, claims=claim)
    assert "link Microsoft from your profile" in str(caught.value)
    assert list(store.list_identities(ann.id)) == []


def test_the_identity_is_tid_and_oid_not_sub(store, organizations):
    auth, ann = make(store, organizations)
    link(store, ann)
    assert sign_in(auth, organizations, claims={"sub": "another-pairwise-sub"}).account.id == ann.id
    with pytest.raises(IdentityNotLinked):
        sign_in(auth, organizations, tenant_id=OTHER)  # same oid, other tenant


def test_tenant_not_allowed(store, organizations):
    auth, ann = make(store, organizations, allowed_tenants=[OTHER])
    link(store, ann)
    with pytest.raises(TenantNotAllowed):
        sign_in(auth, organizations)


def test_issuer_must_match_the_tokens_own_tid(store, organizations):
    auth, ann = make(store, organizations)
    link(store, ann)
    forged = {"iss": f"{organizations.authority_host}/{OTHER}/v2.0"}
    with pytest.raises(InvalidIdToken) as caught:
        sign_in(auth, organizations, claims=forged)
    assert "iss" in caught.value.detail


def test_personal_account_where_only_organizations_are_allowed(store, organizations):
    auth, ann = make(store, organizations)
    link(store, ann, tenant=CONSUMER_TENANT)
    with pytest.raises(TenantNotAllowed) as caught:
        sign_in(auth, organizations, tenant_id=CONSUMER_TENANT)
    assert "work or school account" in str(caught.value)


def test_personal_accounts_with_common(store):
    with FakeMicrosoft(tenant="common") as fake:
        auth, ann = make(store, fake)
        link(store, ann, tenant=CONSUMER_TENANT)
        assert sign_in(auth, fake, tenant_id=CONSUMER_TENANT).account.id == ann.id


def test_only_personal_accounts_with_consumers(store):
    with FakeMicrosoft(tenant="consumers") as fake:
        auth, ann = make(store, fake)
        link(store, ann)
        with pytest.raises(TenantNotAllowed):
            sign_in(auth, fake, tenant_id=WORK)


def test_single_tenant_refuses_other_tenants(store):
    with FakeMicrosoft(tenant=WORK) as fake:
        auth, ann = make(store, fake)
        link(store, ann)
        assert sign_in(auth, fake).account.id == ann.id


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        pytest.param({"aud": "another-app"}, "aud", id="wrong-aud"),
        pytest.param({"exp": int(time.time()) - 3600}, "exp", id="expired"),
        pytest.param({"iat": int(time.time()) + 3600}, "iat", id="iat-future"),
        pytest.param({"nbf": int(time.time()) + 3600}, "nbf", id="nbf-future"),
        pytest.param({"nonce": "another-nonce"}, "nonce", id="wrong-nonce"),
        pytest.param({"tid": "not-a-guid"}, "iss", id="tid-not-a-tenant"),
        pytest.param({"oid": ""}, "oid", id="no-oid"),
        pytest.param({"nonce": None}, "nonce", id="no-nonce"),
        pytest.param({"sub": ""}, "sub", id="empty-sub"),
        pytest.param({"iss": None}, "iss", id="no-iss"),
        pytest.param(
            {"aud": ["00000000-0000-0000-0000-00000000c11e", "other"], "azp": "other"},
            "azp",
            id="several-aud-wrong-azp",
        ),
    ],
)
def test_bad_id_tokens_are_refused(store, organizations, claims, detail):
    auth, ann = make(store, organizations)
    link(store, ann)
    with pytest.raises(InvalidIdToken) as caught:
        sign_in(auth, organizations, claims=claims)
    assert detail in caught.value.detail


def test_admin_consent_required(store):
    with FakeMicrosoft(tenant="organizations", consent_required_tenants=[WORK]) as fake:
        auth, _ = make(store, fake)
        with pytest.raises(AdminConsentRequired) as caught:
            sign_in(auth, fake)
    error = caught.value
    assert error.code == "admin_consent_required"
    assert error.provider_code == "AADSTS65001"
    assert error.consent_url == (
        f"{fake.authority_host}/organizations/adminconsent?client_id="
        "00000000-0000-0000-0000-00000000c11e"
    )


def test_declined(store, organizations):
    auth, _ = make(store, organizations)
    with pytest.raises(ConsentDeclined) as caught:
        sign_in(auth, organizations, decline=True)
    assert caught.value.provider_code == "AADSTS65004"


@pytest.mark.parametrize(
    ("params", "error", "code", "words"),
    [
        pytest.param(
            {"error": "access_denied", "error_description": "AADSTS90094: admin approval"},
            AdminConsentRequired,
            "AADSTS90094",
            "IT department",
            id="90094",
        ),
        pytest.param(
            {"error": "invalid_request", "error_description": "AADSTS90095: admin consent flow"},
            AdminConsentRequired,
            "AADSTS90095",
            "IT department",
            id="90095",
        ),
        pytest.param(
            {"error": "access_denied", "error_subcode": "cancel"},
            ConsentDeclined,
            "access_denied",
            "cancelled",
            id="cancel",
        ),
        pytest.param(
            {"error": "invalid_request", "error_description": "AADSTS50020: user from tenant"},
            TenantNotAllowed,
            "AADSTS50020",
            "organization",
            id="50020",
        ),
        pytest.param(
            {"error": "access_denied", "error_description": "AADSTS53003: conditional access"},
            ProviderError,
            "AADSTS53003",
            "access policies",
            id="53003",
        ),
        pytest.param(
            {"error": "unauthorized_client", "error_description": "AADSTS700016: app not found"},
            ProviderError,
            "AADSTS700016",
            "administrator",
            id="700016",
        ),
        pytest.param(
            {"error": "invalid_request", "error_description": "AADSTS50011: redirect mismatch"},
            ProviderError,
            "AADSTS50011",
            "administrator",
            id="50011",
        ),
        pytest.param(
            {"error": "server_error", "error_description": "something else"},
            ProviderError,
            "server_error",
            "try again",
            id="other",
        ),
    ],
)
def test_entra_error_redirects_are_mapped(store, organizations, params, error, code, words):
    auth, _ = make(store, organizations)
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    state = dict(x.split("=", 1) for x in start.url.split("?", 1)[1].split("&"))["state"]
    with pytest.raises(error) as caught:
        auth.complete(state=start.state, params={**params, "state": state})
    assert type(caught.value) is error
    assert caught.value.provider_code == code
    assert words in str(caught.value)
    assert "AADSTS" not in str(caught.value)


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"client_id": "", "client_secret": "s"}, id="no-client-id"),
        pytest.param({"client_id": "c", "client_secret": ""}, id="no-secret"),
        pytest.param(
            {"client_id": "c", "client_secret": "s", "tenant": "not a tenant"}, id="bad-tenant"
        ),
        pytest.param({"client_id": "c", "client_secret": "s", "tenant": ""}, id="empty-tenant"),
        pytest.param(
            {"client_id": "c", "client_secret": "s", "allowed_tenants": ["x"]}, id="bad-allow"
        ),
        pytest.param(
            {"client_id": "c", "client_secret": "s", "allowed_tenants": []}, id="empty-allow"
        ),
        pytest.param(
            {"client_id": "c", "client_secret": "s", "authority_host": "http://x.test"},
            id="plain-http",
        ),
    ],
)
def test_bad_configuration_is_refused_at_construction(settings):
    with pytest.raises(ConfigurationError):
        MicrosoftProvider(**settings)


@pytest.mark.parametrize("tenant", ["common", "organizations", "consumers", WORK, "contoso.com"])
def test_good_tenants(tenant):
    assert MicrosoftProvider(client_id="c", client_secret="s", tenant=tenant).tenant == tenant


def test_construction_makes_no_network_call(monkeypatch, store):
    def refuse(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    microsoft = MicrosoftProvider(client_id="c", client_secret="s")
    Auth(store, secret_key=SECRET, providers=[microsoft])


def test_discovery_and_keys_are_fetched_once(store, organizations):
    auth, ann = make(store, organizations)
    link(store, ann)
    for _ in range(3):
        sign_in(auth, organizations)
    assert organizations.requests_seen["/organizations/discovery/v2.0/keys"] == 1
    assert organizations.requests_seen["/organizations/oauth2/v2.0/token"] == 3


def test_msal_keeps_no_tokens(store, organizations):
    auth, ann = make(store, organizations)
    link(store, ann)
    provider = auth._flows._providers["microsoft"]
    for _ in range(3):
        sign_in(auth, organizations)
    cache = provider._app().token_cache
    assert list(cache.search("AccessToken")) == []
    assert list(cache.search("IdToken")) == []
    assert list(cache.search("Account")) == []


@pytest.mark.parametrize(
    ("iss", "refused"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param(f"https://login.fake-microsoft.test/{WORK}/v2.0", False, id="a-tenant"),
        pytest.param("https://accounts.google.com", True, id="google"),
        pytest.param("https://login.fake-microsoft.test/evil/v2.0", True, id="not-a-tenant"),
    ],
)
def test_callback_iss_is_checked(store, organizations, iss, refused):
    auth, ann = make(store, organizations)
    link(store, ann)
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    params = organizations.authorize(start.url, oid=OID)
    if iss is not None:
        params["iss"] = iss
    if refused:
        with pytest.raises(InvalidFlowState):
            auth.complete(state=start.state, params=params)
    else:
        assert auth.complete(state=start.state, params=params).account.id == ann.id


@pytest.mark.parametrize(("answer", "granted"), [("True", True), ("False", False)])
def test_the_admins_return_from_the_consent_link_is_its_own_answer(
    store, organizations, answer, granted
):
    auth, _ = make(store, organizations)
    params = {"admin_consent": answer, "tenant": WORK}
    for state in ("", auth.begin_sign_in("microsoft", redirect_uri=CALLBACK).state):
        with pytest.raises(AdminConsentAnswered) as caught:
            auth.complete(state=state, params=params)
        assert (caught.value.code, caught.value.tenant) == ("admin_consent_answered", WORK)
        assert caught.value.granted is granted
        assert "If they approved it, you can now sign in with Microsoft." in str(caught.value)
    assert organizations.requests_seen.get("/organizations/oauth2/v2.0/token") is None


def test_a_callback_with_a_code_is_never_taken_for_an_admin_consent_answer(store, organizations):
    auth, _ = make(store, organizations)
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    params = {**organizations.authorize(start.url, oid=OID), "admin_consent": "True"}
    with pytest.raises(IdentityNotLinked):
        auth.complete(state=start.state, params=params)


def test_without_microsoft_an_admin_consent_redirect_is_an_invalid_flow_state(store):
    auth = Auth(store, secret_key="a unit-test secret key of 32+ bytes")
    with pytest.raises(InvalidFlowState):
        auth.complete(state="", params={"admin_consent": "True", "tenant": WORK})
