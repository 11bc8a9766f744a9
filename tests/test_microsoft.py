"""MicrosoftProvider on FakeMicrosoft: msal's real code path, our own token checks."""

from __future__ import annotations

import hashlib
import socket
import time
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import responses

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
    ProviderUnavailable,
    TenantNotAllowed,
)
from bpart_auth.oidc.flowstate import FlowSealer, code_challenge
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


@pytest.fixture(autouse=True)
def each_facade(facade, monkeypatch):
    """Each test runs on Auth, then on AsyncAuth (asyncio, trio): `make` wraps its Auth."""
    monkeypatch.setitem(globals(), "wrap", facade)


def wrap(auth):
    return auth


def make(store, fake, **provider):
    auth = wrap(
        Auth(
            store,
            secret_key=SECRET,
            providers=[fake.provider(**provider)],
            password_hashing=CHEAP_FOR_TESTS,
        )
    )
    ann = auth.create_account(email="ann@contoso.example")
    return auth, ann


def link(store, account, tenant=WORK, oid=OID):
    store.link_identity(
        account_id=account.id, identity=Identity("microsoft", tenant, oid), email=None, now=NOW
    )


def sign_in(auth, fake, **user):
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    return auth.complete(sealed_flow=start.sealed_flow, params=fake.authorize(start.url, **user))


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
        link(store, auth.create_account(email="eve@other.example"), tenant=OTHER)
        assert sign_in(auth, fake).account.id == ann.id
        with pytest.raises(TenantNotAllowed):
            sign_in(auth, fake, tenant_id=OTHER)


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
        auth.complete(sealed_flow=start.sealed_flow, params={**params, "state": state})
    assert type(caught.value) is error
    assert caught.value.provider_code == code
    assert caught.value.oauth_error == params["error"]
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
            auth.complete(sealed_flow=start.sealed_flow, params=params)
    else:
        assert auth.complete(sealed_flow=start.sealed_flow, params=params).account.id == ann.id


@pytest.mark.parametrize(("answer", "granted"), [("True", True), ("False", False)])
def test_the_admins_return_from_the_consent_link_is_its_own_answer(
    store, organizations, answer, granted
):
    auth, _ = make(store, organizations)
    params = {"admin_consent": answer, "tenant": WORK}
    for state in ("", auth.begin_sign_in("microsoft", redirect_uri=CALLBACK).state):
        with pytest.raises(AdminConsentAnswered) as caught:
            auth.complete(sealed_flow=state, params=params)
        assert (caught.value.code, caught.value.tenant) == ("admin_consent_answered", WORK)
        assert caught.value.granted is granted
        assert "If they approved it, you can now sign in with Microsoft." in str(caught.value)
    assert organizations.requests_seen.get("/organizations/oauth2/v2.0/token") is None


def test_a_callback_with_a_code_is_never_taken_for_an_admin_consent_answer(store, organizations):
    auth, _ = make(store, organizations)
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    params = {**organizations.authorize(start.url, oid=OID), "admin_consent": "True"}
    with pytest.raises(IdentityNotLinked):
        auth.complete(sealed_flow=start.sealed_flow, params=params)


def test_without_microsoft_an_admin_consent_redirect_is_an_invalid_flow_state(store):
    auth = Auth(store, secret_key="a unit-test secret key of 32+ bytes")
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow="", params={"admin_consent": "True", "tenant": WORK})


# Hostile input at each boundary: tenants, the callback, the token endpoint, discovery.

DOMAIN = "contoso.example"
HOST = "https://login.fake-microsoft.test"


@pytest.mark.parametrize(
    ("tenant", "allowed", "user_tenant", "detail"),
    [
        pytest.param("consumers", None, WORK, "only personal accounts", id="work-under-consumers"),
        pytest.param(
            "organizations", None, CONSUMER_TENANT, "only organizations", id="personal-under-orgs"
        ),
        pytest.param(WORK, None, OTHER, f"is not the app's tenant {WORK}", id="other-tenant-guid"),
        pytest.param(
            DOMAIN, None, OTHER, f"is not the app's tenant {WORK}", id="other-tenant-domain"
        ),
        pytest.param("common", [OTHER], WORK, "not allowed", id="outside-allowed-tenants"),
        pytest.param(
            "common", [WORK], CONSUMER_TENANT, "not allowed", id="personal-outside-allowed"
        ),
    ],
)
def test_tenant_refusals_are_tenant_not_allowed(store, tenant, allowed, user_tenant, detail):
    with FakeMicrosoft(tenant=tenant) as fake:
        auth, ann = make(store, fake, allowed_tenants=allowed)
        link(store, ann, tenant=user_tenant)  # so only the tenant check can refuse
        with pytest.raises(TenantNotAllowed) as caught:
            sign_in(auth, fake, tenant_id=user_tenant)
    assert caught.value.code == "tenant_not_allowed"
    assert detail in caught.value.detail


@pytest.mark.parametrize(
    ("tenant", "user_tenant"),
    [
        pytest.param("common", CONSUMER_TENANT, id="personal-under-common"),
        pytest.param("common", OTHER, id="any-work-tenant-under-common"),
        pytest.param("consumers", CONSUMER_TENANT, id="personal-under-consumers"),
        pytest.param(WORK, WORK, id="own-tenant-by-id"),
        pytest.param(DOMAIN, WORK, id="own-tenant-by-domain"),
    ],
)
def test_tenants_the_authority_allows_sign_in(store, tenant, user_tenant):
    with FakeMicrosoft(tenant=tenant) as fake:
        auth, ann = make(store, fake)
        link(store, ann, tenant=user_tenant)
        outcome = sign_in(auth, fake, tenant_id=user_tenant)
    assert outcome.identity == Identity("microsoft", user_tenant, OID)


def test_a_forged_issuer_for_the_tokens_tid_is_still_invalid(store):
    with FakeMicrosoft(tenant=WORK) as fake:
        auth, ann = make(store, fake)
        link(store, ann)
        with pytest.raises(InvalidIdToken) as caught:
            sign_in(auth, fake, claims={"iss": f"{HOST}/{OTHER}/v2.0"})
    assert caught.value.detail.startswith("iss")


@pytest.mark.parametrize(
    ("claims", "detail"),
    [
        pytest.param({"tid": [WORK]}, "iss", id="tid-a-list"),
        pytest.param({"tid": 12}, "iss", id="tid-a-number"),
        pytest.param({"oid": ["x"]}, "tid or oid", id="oid-a-list"),
        pytest.param({"oid": "o" * 256}, "tid or oid", id="oid-too-long"),
        pytest.param({"oid": "\ud800"}, "tid or oid", id="oid-surrogate"),
        pytest.param({"exp": 10**400}, "exp", id="exp-huge"),
    ],
)
def test_claims_of_the_wrong_type_are_invalid(store, organizations, claims, detail):
    auth, ann = make(store, organizations)
    link(store, ann)
    with pytest.raises(InvalidIdToken) as caught:
        sign_in(auth, organizations, claims=claims)
    assert caught.value.detail.startswith(detail)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"email": ["ann@contoso.example"]}, id="email-a-list"),
        pytest.param({"email": "a" * 600}, id="email-too-long"),
        pytest.param({"name": {"given": "Ann"}}, id="name-an-object"),
        pytest.param({"name": 12}, id="name-a-number"),
    ],
)
def test_optional_claims_of_the_wrong_type_are_ignored(store, organizations, claims):
    auth, ann = make(store, organizations)
    link(store, ann)
    outcome = sign_in(auth, organizations, claims=claims)
    assert outcome.account.id == ann.id


def entra_state(start):
    return dict(x.split("=", 1) for x in start.url.split("?", 1)[1].split("&"))["state"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("error_subcode", ["cancel"], id="subcode-a-list"),
        pytest.param("error", None, id="error-none"),
        pytest.param("iss", 12, id="iss-a-number"),
        pytest.param("code", "c" * 20_000, id="code-too-long"),
        pytest.param("error_description", "\udfff", id="description-surrogate"),
    ],
)
def test_bad_callback_parameters_are_invalid_flow_state(store, organizations, name, value):
    auth, ann = make(store, organizations)
    link(store, ann)
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    params = organizations.authorize(start.url)
    with pytest.raises(InvalidFlowState) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params={**params, name: value})
    assert caught.value.detail.startswith(f"callback parameter {name}: ")
    assert "/organizations/oauth2/v2.0/token" not in organizations.requests_seen
    assert auth.complete(sealed_flow=start.sealed_flow, params=params).account.id == ann.id


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"admin_consent": ["True"], "tenant": WORK}, id="admin-consent-a-list"),
        pytest.param({"admin_consent": None, "tenant": WORK}, id="admin-consent-none"),
        pytest.param({"admin_consent": "True", "tenant": [WORK]}, id="tenant-a-list"),
        pytest.param({"admin_consent": "True", "tenant": 12}, id="tenant-a-number"),
    ],
)
def test_a_mangled_admin_consent_redirect_is_invalid_flow_state(store, organizations, params):
    auth, _ = make(store, organizations)
    with pytest.raises(InvalidFlowState) as caught:
        auth.complete(sealed_flow="", params=params)
    assert caught.value.code == "invalid_flow_state"


@pytest.mark.parametrize(
    ("tenant", "kept"),
    [
        pytest.param(WORK.upper(), WORK, id="guid-any-case"),
        pytest.param("contoso.example", None, id="a-domain"),
        pytest.param("<script>alert(1)</script>", None, id="markup"),
        pytest.param("", None, id="empty"),
    ],
)
def test_the_admin_consent_tenant_is_kept_only_as_a_tenant_id(store, organizations, tenant, kept):
    auth, _ = make(store, organizations)
    with pytest.raises(AdminConsentAnswered) as caught:
        auth.complete(sealed_flow="", params={"admin_consent": "True", "tenant": tenant})
    assert caught.value.tenant == kept


def test_a_callback_without_code_or_error_is_a_provider_error(store, organizations):
    auth, _ = make(store, organizations)
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    with pytest.raises(ProviderError) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params={"state": entra_state(start)})
    assert type(caught.value) is ProviderError
    assert caught.value.detail == "callback without code or error"


ENTRA_TOKEN_ENDPOINT = f"{HOST}/organizations/oauth2/v2.0/token"


@pytest.fixture
def served():
    fake = FakeMicrosoft(tenant="organizations")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake, mock


MSAL_TOKEN_ANSWERS = [
    pytest.param(200, "[]", ProviderUnavailable, "is a JSON list", id="json-array"),
    pytest.param(200, "null", ProviderUnavailable, "is a JSON NoneType", id="json-null"),
    pytest.param(200, '"x"', ProviderUnavailable, "is a JSON str", id="json-string"),
    pytest.param(
        200,
        '{"access_token": "a", "expires_in": 1e400}',
        ProviderUnavailable,
        "overflows",
        id="expires-in-1e400",
    ),
    pytest.param(
        200,
        '{"access_token": "a", "refresh_in": 1e300}',
        ProviderUnavailable,
        "refresh_in is not a number of seconds",
        id="refresh-in-huge",
    ),
    pytest.param(
        200,
        '{"access_token": "a", "scope": 12}',
        ProviderUnavailable,
        "scope is not a string",
        id="scope-a-number",
    ),
    pytest.param(200, "<html>", ProviderUnavailable, "not JSON", id="html-200"),
    pytest.param(
        200,
        '{"a": "' + "x" * (1 << 20) + '"}',
        ProviderUnavailable,
        "larger than",
        id="huge-body",
    ),
    pytest.param(400, "<html>", ProviderUnavailable, "not JSON", id="html-400"),
    pytest.param(500, "<html>", ProviderUnavailable, "HTTP 500", id="500"),
    pytest.param(
        503, '{"error": "temporarily_unavailable"}', ProviderUnavailable, "HTTP 503", id="503"
    ),
    pytest.param(429, "", ProviderUnavailable, "HTTP 429", id="429"),
    pytest.param(
        200, '{"id_token": "not a token"}', InvalidIdToken, "malformed", id="id-token-garbage"
    ),
    pytest.param(
        200,
        '{"id_token": "e30.W10.c2ln"}',
        InvalidIdToken,
        "malformed",
        id="id-token-payload-array",
    ),
    pytest.param(
        200,
        '{"access_token": "a", "token_type": "Bearer"}',
        ProviderError,
        "without id_token",
        id="no-id-token",
    ),
]


@pytest.mark.parametrize(("status", "body", "error", "detail"), MSAL_TOKEN_ANSWERS)
def test_token_endpoint_answers_through_msal_are_typed(served, store, status, body, error, detail):
    fake, mock = served
    mock.upsert("POST", ENTRA_TOKEN_ENDPOINT, status=status, body=body)
    auth, ann = make(store, fake)
    link(store, ann)
    with pytest.raises(error) as caught:
        sign_in(auth, fake)
    assert type(caught.value) is error
    assert detail in caught.value.detail


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(requests.exceptions.ReadTimeout("read timed out"), id="timeout"),
        pytest.param(requests.exceptions.ConnectionError("refused"), id="connection-refused"),
    ],
)
def test_token_endpoint_network_failures_through_msal(served, store, failure):
    fake, mock = served
    mock.upsert("POST", ENTRA_TOKEN_ENDPOINT, body=failure)
    auth, _ = make(store, fake)
    with pytest.raises(ProviderUnavailable) as caught:
        sign_in(auth, fake)
    assert type(failure).__name__ in caught.value.detail


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        pytest.param(
            {"error": "invalid_grant", "error_description": "AADSTS70008: code expired"},
            ProviderError,
            "AADSTS70008",
            id="expired-code",
        ),
        pytest.param(
            {"error": "invalid_grant", "error_description": "AADSTS65001: not consented"},
            AdminConsentRequired,
            "AADSTS65001",
            id="consent",
        ),
        pytest.param({"error": "invalid_client"}, ProviderError, "invalid_client", id="no-aadsts"),
    ],
)
def test_token_endpoint_oauth_errors_keep_both_codes(served, store, answer, error, code):
    fake, mock = served
    mock.upsert("POST", ENTRA_TOKEN_ENDPOINT, status=400, json=answer)
    auth, _ = make(store, fake)
    with pytest.raises(error) as caught:
        sign_in(auth, fake)
    assert type(caught.value) is error
    assert (caught.value.provider_code, caught.value.oauth_error) == (code, answer["error"])


def test_every_request_msal_makes_is_ours_with_a_timeout(served, store):
    fake, mock = served
    auth, ann = make(store, fake)
    link(store, ann)
    sign_in(auth, fake)
    assert [call.request.method for call in mock.calls] == ["GET", "POST", "GET"]
    assert all(call.request.req_kwargs["timeout"] == 10.0 for call in mock.calls)
    # One discovery request: msal is answered with the checked document.
    assert fake.requests_seen["/organizations/v2.0/.well-known/openid-configuration"] == 1


ENTRA_DISCOVERY = {
    "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
    "authorization_endpoint": "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
    "token_endpoint": "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
    "jwks_uri": "https://login.microsoftonline.com/organizations/discovery/v2.0/keys",
    "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
    "response_modes_supported": ["query", "fragment", "form_post"],
}
ENTRA_METADATA_URL = (
    "https://login.microsoftonline.com/organizations/v2.0/.well-known/openid-configuration"
)


@pytest.mark.parametrize(
    ("changes", "detail"),
    [
        pytest.param({}, None, id="entra-as-published"),
        pytest.param(
            {"issuer": f"https://login.microsoftonline.com/{WORK}/v2.0"},
            "is not https://login.microsoftonline.com/{tenantid}/v2.0",
            id="one-tenants-issuer",
        ),
        pytest.param(
            {"issuer": "https://login.evil.example/{tenantid}/v2.0"}, "issuer", id="other-host"
        ),
        pytest.param(
            {"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0/"},
            "issuer",
            id="trailing-slash",
        ),
        pytest.param(
            {"token_endpoint": "https://login.evil.example/organizations/oauth2/v2.0/token"},
            "token_endpoint is on login.evil.example, not on login.microsoftonline.com",
            id="token-endpoint-elsewhere",
        ),
        pytest.param(
            {"jwks_uri": "https://login.microsoftonline.com.evil.example/keys"},
            "jwks_uri",
            id="jwks-lookalike-host",
        ),
        pytest.param(
            {"authorization_endpoint": "http://login.microsoftonline.com/o/authorize"},
            "authorization_endpoint is not a plain https URL",
            id="plain-http",
        ),
    ],
)
def test_entras_discovery_document_is_pinned(store, changes, detail):
    microsoft = MicrosoftProvider(client_id="c", client_secret="s")
    auth = Auth(store, secret_key=SECRET, providers=[microsoft])
    with responses.RequestsMock() as mock:
        mock.get(ENTRA_METADATA_URL, json={**ENTRA_DISCOVERY, **changes})
        if detail is None:
            start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
            assert start.url.startswith(ENTRA_DISCOVERY["authorization_endpoint"] + "?")
        else:
            with pytest.raises(ProviderUnavailable) as caught:
                auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
            assert detail in caught.value.detail


@pytest.mark.parametrize(
    ("tenant", "issuer", "accepted"),
    [
        pytest.param("consumers", f"{HOST}/{CONSUMER_TENANT}/v2.0", True, id="consumers"),
        pytest.param("consumers", f"{HOST}/{{tenantid}}/v2.0", False, id="consumers-template"),
        pytest.param("common", f"{HOST}/{{tenantid}}/v2.0", True, id="common"),
        pytest.param("common", f"{HOST}/{CONSUMER_TENANT}/v2.0", False, id="common-one-tenant"),
        pytest.param(WORK, f"{HOST}/{WORK}/v2.0", True, id="tenant-id"),
        pytest.param(WORK, f"{HOST}/{OTHER}/v2.0", False, id="tenant-id-another"),
        pytest.param(WORK, f"{HOST}/{{tenantid}}/v2.0", False, id="tenant-id-template"),
        pytest.param(DOMAIN, f"{HOST}/{OTHER}/v2.0", True, id="domain-any-tenant-id"),
        pytest.param(DOMAIN, f"{HOST}/{DOMAIN}/v2.0", False, id="domain-by-name"),
        pytest.param(DOMAIN, f"{HOST}/{{tenantid}}/v2.0", False, id="domain-template"),
    ],
)
def test_the_discovery_issuer_must_be_the_authoritys(store, tenant, issuer, accepted):
    fake = FakeMicrosoft(tenant=tenant)
    metadata_url = f"{HOST}/{tenant}/v2.0/.well-known/openid-configuration"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        mock.upsert("GET", metadata_url, json={**fake._idp.metadata(), "issuer": issuer})
        auth, _ = make(store, fake)
        if accepted:
            assert auth.begin_sign_in("microsoft", redirect_uri=CALLBACK).url.startswith(HOST)
        else:
            with pytest.raises(ProviderUnavailable) as caught:
                auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
            assert caught.value.detail.startswith(f"discovery at {metadata_url}: issuer")


def test_a_domain_tenant_is_pinned_to_the_tenant_id_its_discovery_names(store):
    fake = FakeMicrosoft(tenant=DOMAIN)
    metadata_url = f"{HOST}/{DOMAIN}/v2.0/.well-known/openid-configuration"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        mock.upsert(
            "GET", metadata_url, json={**fake._idp.metadata(), "issuer": f"{HOST}/{OTHER}/v2.0"}
        )
        auth, ann = make(store, fake)
        link(store, ann, tenant=WORK)
        link(store, auth.create_account(email="bob@fabrikam.example"), tenant=OTHER)
        with pytest.raises(TenantNotAllowed):
            sign_in(auth, fake, tenant_id=WORK)
        assert sign_in(auth, fake, tenant_id=OTHER).identity.issuer == OTHER


def test_a_refused_discovery_is_asked_again_next_time(store):
    fake = FakeMicrosoft(tenant="organizations")
    metadata_url = f"{HOST}/organizations/v2.0/.well-known/openid-configuration"
    forged = {**fake._idp.metadata(), "token_endpoint": "https://login.evil.example/token"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        mock.upsert("GET", metadata_url, json=forged)
        auth, ann = make(store, fake)
        link(store, ann)
        with pytest.raises(ProviderUnavailable):
            auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
        mock.upsert("GET", metadata_url, json=fake._idp.metadata())
        assert sign_in(auth, fake).account.id == ann.id


def test_endpoint_hosts_for_a_sovereign_cloud_with_its_own_keys_host(store):
    microsoft = MicrosoftProvider(
        client_id="c",
        client_secret="s",
        authority_host="https://login.microsoftonline.us",
        endpoint_hosts=["login.microsoftonline.us", "keys.microsoftonline.us"],
    )
    document = {
        "issuer": "https://login.microsoftonline.us/{tenantid}/v2.0",
        "authorization_endpoint": "https://login.microsoftonline.us/organizations/oauth2/v2.0/authorize",
        "token_endpoint": "https://login.microsoftonline.us/organizations/oauth2/v2.0/token",
        "jwks_uri": "https://keys.microsoftonline.us/organizations/discovery/v2.0/keys",
    }
    auth = Auth(store, secret_key=SECRET, providers=[microsoft])
    with responses.RequestsMock() as mock:
        mock.get(
            "https://login.microsoftonline.us/organizations/v2.0/.well-known/openid-configuration",
            json=document,
        )
        start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    assert start.url.startswith(document["authorization_endpoint"] + "?")


@pytest.mark.parametrize(
    "endpoint_hosts",
    [
        pytest.param("login.microsoftonline.us", id="a-str"),
        pytest.param([], id="empty"),
        pytest.param(["https://login.microsoftonline.us"], id="a-url"),
    ],
)
def test_bad_endpoint_hosts_are_refused_at_construction(endpoint_hosts):
    with pytest.raises(ConfigurationError):
        MicrosoftProvider(client_id="c", client_secret="s", endpoint_hosts=endpoint_hosts)


def test_one_pkce_verifier_and_one_nonce_are_sealed(store, organizations):
    """The URL carries the flow's own challenge and hashed nonce; nothing of msal's is sealed."""
    auth, ann = make(store, organizations)
    link(store, ann)
    start = auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)
    flow = FlowSealer(SECRET).open(start.sealed_flow)
    query = dict(parse_qsl(urlsplit(start.url).query))
    assert query["code_challenge"] == code_challenge(flow.code_verifier)
    assert query["code_challenge_method"] == "S256"
    assert query["nonce"] == hashlib.sha256(flow.nonce.encode()).hexdigest()
    assert (query["response_mode"], query["client_info"]) == ("query", "1")
    assert set(query["scope"].split()) == {"openid", "profile", "email"}
    assert dict(flow.extra) == {}
    params = organizations.authorize(start.url, oid=OID)
    assert auth.complete(sealed_flow=start.sealed_flow, params=params).account.id == ann.id
