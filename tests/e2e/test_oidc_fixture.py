"""The oidc-provider fixture itself, checked with plain requests + PyJWT (no bpart_auth)."""

from __future__ import annotations

import dataclasses
import secrets

import jwt
import pytest
import requests

from .oidc_fixture import (
    CONSUMER_TENANT,
    MICROSOFT_UNKNOWN_APP,
    WORK_TENANT,
    AuthorizeError,
    OidcClient,
    OidcServer,
    OidcSettings,
    pkce_pair,
    running_oidc_server,
)

pytestmark = pytest.mark.e2e


def _exchange(server: OidcServer, issuer: str, client: OidcClient, code: str, verifier: str):
    return server.token(
        issuer,
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=client.redirect_uri,
        code_verifier=verifier,
    )


def _verified_id_token(
    server: OidcServer, issuer: str, client: OidcClient, id_token: str, expected_iss: str
):
    jwks_uri = server.discovery(issuer)["jwks_uri"]
    # PyJWKClient uses urllib, not requests: hand it the keys fetched with the test CA.
    jwks = requests.get(jwks_uri, verify=server.ca_bundle, timeout=10).json()
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    claims = jwt.decode(
        id_token,
        key=key,
        algorithms=["RS256"],
        audience=client.client_id,
        issuer=expected_iss,
        options={"require": ["iss", "aud", "exp", "iat", "sub", "nonce"]},
    )
    assert claims["iss"] == expected_iss
    return claims


def _sign_in(
    server: OidcServer,
    issuer: str,
    client: OidcClient,
    login: str,
    *,
    expected_iss: str | None = None,
    **extra: str,
):
    """A code flow at `issuer` (a mount path); the ID token's iss must be `expected_iss`."""
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = server.authorization_url(
        issuer, client, state=state, nonce=nonce, code_challenge=challenge, **extra
    )
    params = server.authorize(url, login=login)
    assert params["state"] == state, params
    response = _exchange(server, issuer, client, params["code"], verifier)
    assert response.status_code == 200, response.text
    claims = _verified_id_token(
        server, issuer, client, response.json()["id_token"], expected_iss or issuer
    )
    assert claims["nonce"] == nonce
    return params, claims


# --- discovery ----------------------------------------------------------------------------


def test_google_discovery(oidc_server):
    issuer = oidc_server.google_issuer
    assert issuer == f"https://127.0.0.1:{oidc_server.port}/google"
    document = oidc_server.discovery(issuer)
    assert document["issuer"] == issuer
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["response_types_supported"] == ["code"]
    assert document["id_token_signing_alg_values_supported"] == ["RS256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert {"openid", "email", "profile", "offline_access"} <= set(document["scopes_supported"])
    for endpoint in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        assert document[endpoint].startswith(f"{issuer}/"), endpoint
    jwks = requests.get(document["jwks_uri"], verify=oidc_server.ca_bundle, timeout=10).json()
    assert [(k["kty"], k["alg"], k["use"]) for k in jwks["keys"]] == [("RSA", "RS256", "sig")]
    assert all("d" not in k for k in jwks["keys"])


@pytest.mark.parametrize("tenant", [WORK_TENANT, CONSUMER_TENANT])
def test_microsoft_discovery_per_tenant(oidc_server, tenant):
    issuer = oidc_server.microsoft_issuer(tenant)
    assert issuer == f"https://127.0.0.1:{oidc_server.port}/microsoft/{tenant}/v2.0"
    # MSAL's authority + /v2.0/.well-known/openid-configuration lands on the same document.
    authority = oidc_server.microsoft_authority(tenant)
    session = oidc_server.session()
    document = session.get(f"{authority}/v2.0/.well-known/openid-configuration", timeout=10)
    assert document.json()["issuer"] == issuer
    keys = session.get(document.json()["jwks_uri"], timeout=10).json()["keys"]
    session.close()
    # One key set for every tenant, as Entra has.
    other = oidc_server.microsoft_issuer(CONSUMER_TENANT if tenant == WORK_TENANT else WORK_TENANT)
    other_jwks = requests.get(
        oidc_server.discovery(other)["jwks_uri"], verify=oidc_server.ca_bundle, timeout=10
    ).json()
    assert keys == other_jwks["keys"]


def test_unknown_path_is_404(oidc_server):
    response = requests.get(
        f"{oidc_server.origin}/nowhere/.well-known/openid-configuration",
        verify=oidc_server.ca_bundle,
        timeout=10,
    )
    assert response.status_code == 404


def test_certificate_is_checked(oidc_server):
    session = requests.Session()
    session.trust_env = False  # verify=True: the system CAs, which do not know the test CA
    with pytest.raises(requests.exceptions.SSLError):
        session.get(oidc_server.google_issuer + "/.well-known/openid-configuration", timeout=10)
    session.close()


# --- code flow with PKCE --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "email", "email_verified", "hd"),
    [
        ("ann", "ann@example.com", True, "example.com"),
        ("unverified", "unverified@example.com", False, "example.com"),
        ("other-hd", "carol@other.example", True, "other.example"),
        ("consumer", "dave@gmail.example", True, None),
    ],
)
def test_google_code_flow(oidc_server, login, email, email_verified, hd):
    issuer, client = oidc_server.google_issuer, oidc_server.google_client
    assert client.token_endpoint_auth_method == "client_secret_basic"
    params, claims = _sign_in(oidc_server, issuer, client, login)
    assert params["iss"] == issuer  # RFC 9207
    assert claims["sub"] == oidc_server.settings.google_accounts[login]["sub"]
    assert claims["email"] == email
    assert claims["email_verified"] is email_verified
    assert claims.get("hd") == hd
    assert claims["name"]


@pytest.mark.parametrize(
    ("login", "tenant"),
    [("work", WORK_TENANT), ("work-no-email", WORK_TENANT), ("personal", CONSUMER_TENANT)],
)
def test_microsoft_code_flow(oidc_server, login, tenant):
    issuer, client = oidc_server.microsoft_issuer(tenant), oidc_server.microsoft_client
    assert client.token_endpoint_auth_method == "client_secret_post"
    params, claims = _sign_in(oidc_server, issuer, client, login)
    account = oidc_server.settings.microsoft_accounts[login]
    assert params["iss"] == issuer
    assert claims["iss"] == f"https://127.0.0.1:{oidc_server.port}/microsoft/{tenant}/v2.0"
    assert claims["tid"] == tenant
    assert claims["oid"] == account["oid"]
    assert claims["sub"] == account["sub"] != account["oid"]
    assert claims["preferred_username"] == account["preferred_username"]
    assert claims.get("email") == account.get("email")
    assert claims["ver"] == "2.0"


@pytest.mark.parametrize(
    ("authority", "discovery_issuer"),
    [
        ("common", "/microsoft/{tenantid}/v2.0"),
        ("organizations", "/microsoft/{tenantid}/v2.0"),
        ("consumers", f"/microsoft/{CONSUMER_TENANT}/v2.0"),
    ],
)
def test_microsoft_multi_tenant_discovery(oidc_server, authority, discovery_issuer):
    with oidc_server.session() as session:
        response = session.get(oidc_server.microsoft_metadata_url(authority), timeout=10)
    document = response.json()
    # Entra's template, literally: a client substitutes the token's tid to check iss.
    assert document["issuer"] == oidc_server.origin + discovery_issuer
    assert document["authorization_response_iss_parameter_supported"] is False
    mount = oidc_server.microsoft_authority(authority) + "/v2.0"
    assert document["authorization_endpoint"] == f"{mount}/auth"
    assert document["token_endpoint"] == f"{mount}/token"


@pytest.mark.parametrize(
    ("authority", "login", "tenant"),
    [
        ("common", "personal", CONSUMER_TENANT),
        ("common", "work", WORK_TENANT),
        ("organizations", "work", WORK_TENANT),
        ("consumers", "personal", CONSUMER_TENANT),
    ],
)
def test_microsoft_multi_tenant_code_flow(oidc_server, authority, login, tenant):
    mount = oidc_server.microsoft_authority(authority) + "/v2.0"
    params, claims = _sign_in(
        oidc_server,
        mount,
        oidc_server.microsoft_client,
        login,
        expected_iss=oidc_server.microsoft_issuer(tenant),
        response_mode="form_post",
    )
    assert "iss" not in params  # Entra sends no RFC 9207 iss
    assert claims["tid"] == tenant
    assert claims["oid"] == oidc_server.settings.microsoft_accounts[login]["oid"]


@pytest.mark.parametrize(
    ("authority", "login"), [("organizations", "personal"), ("consumers", "work")]
)
def test_microsoft_multi_tenant_audience(oidc_server, authority, login):
    _, challenge = pkce_pair()
    url = oidc_server.authorization_url(
        oidc_server.microsoft_authority(authority) + "/v2.0",
        oidc_server.microsoft_client,
        state="s",
        code_challenge=challenge,
    )
    with pytest.raises(AuthorizeError, match="unknown login"):
        oidc_server.authorize(url, login=login)


def test_account_of_another_tenant_is_unknown(oidc_server):
    _, challenge = pkce_pair()
    url = oidc_server.authorization_url(
        oidc_server.microsoft_issuer(CONSUMER_TENANT),
        oidc_server.microsoft_client,
        state="s",
        code_challenge=challenge,
    )
    with pytest.raises(AuthorizeError, match="unknown login"):
        oidc_server.authorize(url, login="work")


def test_wrong_pkce_verifier_is_refused(oidc_server):
    issuer, client = oidc_server.google_issuer, oidc_server.google_client
    verifier, challenge = pkce_pair()
    url = oidc_server.authorization_url(issuer, client, state="s", code_challenge=challenge)
    code = oidc_server.authorize(url, login="ann")["code"]
    wrong, _ = pkce_pair()
    response = _exchange(oidc_server, issuer, client, code, wrong)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    # oidc-provider does not burn the code on a PKCE mismatch.
    assert _exchange(oidc_server, issuer, client, code, verifier).status_code == 200


def test_code_is_single_use(oidc_server):
    issuer, client = oidc_server.google_issuer, oidc_server.google_client
    verifier, challenge = pkce_pair()
    url = oidc_server.authorization_url(issuer, client, state="s", code_challenge=challenge)
    code = oidc_server.authorize(url, login="ann")["code"]
    assert _exchange(oidc_server, issuer, client, code, verifier).status_code == 200
    assert _exchange(oidc_server, issuer, client, code, verifier).json()["error"] == "invalid_grant"


def test_pkce_is_required(oidc_server):
    issuer, client = oidc_server.google_issuer, oidc_server.google_client
    url = oidc_server.authorization_url(issuer, client, state="s-123", code_challenge=None)
    params = oidc_server.authorize(url, login="ann")
    assert params["error"] == "invalid_request"
    assert "PKCE" in params["error_description"]
    assert params["state"] == "s-123"


def test_plain_pkce_is_refused(oidc_server):
    issuer, client = oidc_server.google_issuer, oidc_server.google_client
    url = oidc_server.authorization_url(
        issuer,
        client,
        state="s",
        code_challenge="x" * 43,
        code_challenge_method="plain",
    )
    params = oidc_server.authorize(url, login="ann")
    assert params["error"] == "invalid_request"


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_secret_basic_or_post(oidc_server, method):
    # Like Google and Entra, oidc-provider 9 takes the secret either way, whatever the
    # client was registered with.
    issuer, registered = oidc_server.google_issuer, oidc_server.google_client
    client = dataclasses.replace(registered, token_endpoint_auth_method=method)
    verifier, challenge = pkce_pair()
    url = oidc_server.authorization_url(issuer, registered, state="s", code_challenge=challenge)
    code = oidc_server.authorize(url, login="ann")["code"]
    wrong = dataclasses.replace(client, client_secret="wrong")
    response = _exchange(oidc_server, issuer, wrong, code, verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert _exchange(oidc_server, issuer, client, code, verifier).status_code == 200


def test_select_account_prompt_and_form_post(oidc_server):
    # Google and Entra accept prompt=select_account (oidc-provider alone would not);
    # response_mode=form_post is answered with an auto-submit form the helper reads.
    params, claims = _sign_in(
        oidc_server,
        oidc_server.microsoft_issuer(),
        oidc_server.microsoft_client,
        "work",
        prompt="select_account",
        response_mode="form_post",
    )
    assert claims["tid"] == WORK_TENANT
    assert params["iss"] == oidc_server.microsoft_issuer()


# --- error redirects ------------------------------------------------------------------------


def _error_for(server: OidcServer, issuer: str, client: OidcClient, login: str, **extra: str):
    _, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    url = server.authorization_url(issuer, client, state=state, code_challenge=challenge, **extra)
    params = server.authorize(url, login=login)
    assert params["state"] == state
    assert "code" not in params
    return params


def test_google_decline(oidc_server):
    issuer = oidc_server.google_issuer
    params = _error_for(oidc_server, issuer, oidc_server.google_client, "decline")
    assert params == {"error": "access_denied", "state": params["state"], "iss": issuer}


def test_microsoft_admin_consent_required(oidc_server):
    issuer = oidc_server.microsoft_issuer()
    params = _error_for(oidc_server, issuer, oidc_server.microsoft_client, "needs-admin")
    assert params["error"] == "consent_required"
    assert params["error_description"].startswith("AADSTS65001: ")
    assert params["iss"] == issuer


@pytest.mark.parametrize(
    ("login", "code"), [("decline", "AADSTS65004"), ("admin-approval", "AADSTS90094")]
)
def test_microsoft_cancel(oidc_server, login, code):
    issuer = oidc_server.microsoft_issuer(CONSUMER_TENANT)
    params = _error_for(oidc_server, issuer, oidc_server.microsoft_client, login)
    assert params["error"] == "access_denied"
    assert params["error_subcode"] == "cancel"
    assert params["error_description"].startswith(f"{code}: ")


def test_microsoft_error_as_form_post(oidc_server):
    params = _error_for(
        oidc_server,
        oidc_server.microsoft_issuer(),
        oidc_server.microsoft_client,
        "needs-admin",
        response_mode="form_post",
    )
    assert params["error"] == "consent_required"


def test_client_refused_before_login(oidc_server):
    issuer = oidc_server.microsoft_issuer()
    # No login form: the error comes straight from the authorization endpoint.
    params = _error_for(oidc_server, issuer, MICROSOFT_UNKNOWN_APP, "never-asked")
    assert params["error"] == "invalid_client"
    assert params["error_description"].startswith("AADSTS700016: ")
    assert params["iss"] == issuer


def test_unregistered_redirect_uri_is_not_redirected_to(oidc_server):
    client = dataclasses.replace(
        oidc_server.google_client, redirect_uris=("https://evil.example.test/callback",)
    )
    _, challenge = pkce_pair()
    url = oidc_server.authorization_url(
        oidc_server.google_issuer, client, state="s", code_challenge=challenge
    )
    with pytest.raises(AuthorizeError, match="400"):
        oidc_server.authorize(url, login="ann")


# --- a server of one's own ------------------------------------------------------------------


def test_custom_settings(oidc_available, tmp_path):
    extra_client = OidcClient(
        "custom-client", "custom-secret", ("http://127.0.0.1:1/callback",), "client_secret_post"
    )
    settings = dataclasses.replace(
        OidcSettings(),
        google_clients=(extra_client,),
        google_accounts={
            "zed": {"sub": "zed-sub", "email": "zed@z.example", "email_verified": True}
        },
        microsoft_tenants=(WORK_TENANT,),
        microsoft_authorization_response_iss=False,  # like Entra: no RFC 9207 iss
    )
    with running_oidc_server(settings, tmp_path) as server:
        params, claims = _sign_in(server, server.google_issuer, extra_client, "zed")
        assert params["iss"] == server.google_issuer
        assert claims["sub"] == "zed-sub"

        issuer = server.microsoft_issuer()
        assert server.discovery(issuer)["authorization_response_iss_parameter_supported"] is False
        params, claims = _sign_in(server, issuer, server.microsoft_client, "work")
        assert "iss" not in params
        assert claims["iss"] == issuer
        assert "iss" not in _error_for(server, issuer, server.microsoft_client, "decline")
        with pytest.raises(ValueError, match="not served"):
            server.microsoft_issuer(CONSUMER_TENANT)

        # It exits when its stdin (the lifeline to the parent) closes.
        assert server.process is not None
        assert server.process.stdin is not None
        server.process.stdin.close()
        assert server.process.wait(timeout=5) == 0


def test_server_stops_after_max_lifetime(oidc_available, tmp_path):
    settings = OidcSettings(microsoft_tenants=(), microsoft_multi_tenant=(), max_lifetime_seconds=1)
    with running_oidc_server(settings, tmp_path) as server:
        assert server.process is not None
        assert server.process.wait(timeout=10) == 0
        assert "maximum lifetime of 1s reached" in server.log_tail()
