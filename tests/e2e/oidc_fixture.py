"""A real OpenID provider on loopback for end-to-end tests: panva's `oidc-provider`.

One `node tests/e2e/oidc/server.mjs` process serves, over HTTPS on 127.0.0.1 with a
throwaway CA, a Google-style issuer (`https://127.0.0.1:PORT/google`), one Entra-style
issuer per Microsoft tenant (`https://127.0.0.1:PORT/microsoft/<tid>/v2.0`, the shape of
`https://login.microsoftonline.com/<tid>/v2.0`), and Entra's multi-tenant authorities
(`.../microsoft/{common,organizations,consumers}/v2.0`: discovery issuer
`.../microsoft/{tenantid}/v2.0`, ID tokens issued as the account's own tenant).

Use the session fixture `oidc_server` (tests/e2e/conftest.py), or
`running_oidc_server(settings, workdir)` for a server of your own. `OidcServer.authorize`
drives the provider's login and consent forms like a browser and returns the query
parameters of the final redirect to the client's redirect_uri, which it never follows.

TLS: `requests` lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override `Session.verify` when
`trust_env` is true (the env wins whenever the per-request `verify` is None or True). The
sessions made here set `verify=<test CA>` AND `trust_env=False`; with plain
`requests.get`, pass `verify=server.ca_bundle` on each call.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import hashlib
import html.parser
import ipaddress
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OIDC_DIR = Path(__file__).resolve().parent / "oidc"
SERVER_SCRIPT = OIDC_DIR / "server.mjs"
READY_TIMEOUT = 20.0

# Never contacted: `authorize` stops at the redirect to it.
REDIRECT_URI = "https://app.example.test/callback"

WORK_TENANT = "11111111-1111-1111-1111-111111111111"
MULTI_TENANT_AUTHORITIES = ("common", "organizations", "consumers")
# Entra's tenant id for personal Microsoft accounts (the `tid` of every MSA ID token).
CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclasses.dataclass(frozen=True)
class OidcClient:
    """A client registered at every issuer of one provider (Google, or each tenant)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = (REDIRECT_URI,)
    # What `OidcServer.token` uses. oidc-provider 9 accepts client_secret_basic and
    # client_secret_post alike for a client registered with either (as Google and Entra
    # do); other methods (private_key_jwt, none) must match the registration.
    token_endpoint_auth_method: str = "client_secret_basic"
    # If set, the authorization endpoint answers every request of this client with this
    # error redirect (plus state, iss), before any login.
    authorization_error: Mapping[str, str] | None = None

    @property
    def redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def to_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": list(self.redirect_uris),
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
        }
        if self.authorization_error is not None:
            config["authorization_error"] = dict(self.authorization_error)
        return config


# Google accepts the secret either way; the library sends it in the form body.
GOOGLE_CLIENT = OidcClient(
    "google-client.apps.example.test",
    "google-secret",
    token_endpoint_auth_method="client_secret_basic",
)
# MSAL sends client_secret in the form body.
MICROSOFT_CLIENT = OidcClient(
    "22222222-2222-2222-2222-222222222222",
    "microsoft-secret",
    token_endpoint_auth_method="client_secret_post",
)
# An app Entra does not know in the tenant: every authorization request is refused.
MICROSOFT_UNKNOWN_APP = OidcClient(
    "33333333-3333-3333-3333-333333333333",
    "unknown-app-secret",
    token_endpoint_auth_method="client_secret_post",
    authorization_error={
        "error": "invalid_client",
        "error_description": (
            "AADSTS700016: Application with identifier '33333333-3333-3333-3333-333333333333'"
            " was not found in the directory 'Contoso'. This can happen if the application"
            " has not been installed by the administrator of the tenant."
        ),
    },
)

GOOGLE_ACCOUNTS: Mapping[str, Mapping[str, Any]] = {
    "ann": {
        "sub": "100000000000000000001",
        "email": "ann@example.com",
        "email_verified": True,
        "hd": "example.com",
        "name": "Ann Example",
    },
    "unverified": {
        "sub": "100000000000000000002",
        "email": "unverified@example.com",
        "email_verified": False,
        "hd": "example.com",
        "name": "Una Verified",
    },
    "other-hd": {
        "sub": "100000000000000000003",
        "email": "carol@other.example",
        "email_verified": True,
        "hd": "other.example",
        "name": "Carol Other",
    },
    # A consumer (gmail) account: no hd claim.
    "consumer": {
        "sub": "100000000000000000004",
        "email": "dave@gmail.example",
        "email_verified": True,
        "name": "Dave Consumer",
    },
}

_AAD_TRACE = (
    "\r\nTrace ID: 00000000-0000-0000-0000-000000000000"
    "\r\nCorrelation ID: 00000000-0000-0000-0000-000000000000"
    "\r\nTimestamp: 2025-01-01 00:00:00Z"
)

GOOGLE_ERROR_LOGINS: Mapping[str, Mapping[str, Any]] = {
    # The user pressed Cancel on Google's consent screen.
    "decline": {"error": "access_denied"},
}

# Served by every tenant's issuer. Shaped like Entra's redirects (error, error_description
# starting with the AADSTS code, error_subcode); which `error` goes with which AADSTS code
# follows what Entra sends as far as we know, but treat the pairing as illustrative.
MICROSOFT_ERROR_LOGINS: Mapping[str, Mapping[str, Any]] = {
    # The user pressed Cancel on the consent prompt.
    "decline": {
        "error": "access_denied",
        "error_subcode": "cancel",
        "error_description": "AADSTS65004: User declined to consent to access the app."
        + _AAD_TRACE,
    },
    # The organization requires admin consent for this app.
    "needs-admin": {
        "error": "consent_required",
        "error_description": (
            "AADSTS65001: The user or administrator has not consented to use the application"
            f" with ID '{MICROSOFT_CLIENT.client_id}' named 'bpart_auth e2e'. Send an"
            " interactive authorization request for this user and resource."
        )
        + _AAD_TRACE,
    },
    # The user asked for admin approval and went back to the app.
    "admin-approval": {
        "error": "access_denied",
        "error_subcode": "cancel",
        "error_description": (
            "AADSTS90094: An administrator of Contoso has set a policy that prevents you"
            " from granting bpart_auth e2e the permissions it is requesting."
        )
        + _AAD_TRACE,
    },
}

# Each account is served by the issuer of its `tid`. `sub` is pairwise and opaque (it is
# not `oid`); bpart_auth must match on tid + oid.
MICROSOFT_ACCOUNTS: Mapping[str, Mapping[str, Any]] = {
    "work": {
        "sub": "w0rkSubjectAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "oid": "aaaaaaaa-0000-0000-0000-000000000001",
        "tid": WORK_TENANT,
        "preferred_username": "ann@contoso.example",
        "email": "ann@contoso.example",
        "name": "Ann Contoso",
        "ver": "2.0",
    },
    # Entra's `email` claim is optional: many work accounts have none.
    "work-no-email": {
        "sub": "w0rkSubjectBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB",
        "oid": "aaaaaaaa-0000-0000-0000-000000000002",
        "tid": WORK_TENANT,
        "preferred_username": "bob@contoso.example",
        "name": "Bob Contoso",
        "ver": "2.0",
    },
    "personal": {
        "sub": "pers0nalSubjectCCCCCCCCCCCCCCCCCCCCCCCCCCC",
        "oid": "00000000-0000-0000-1234-56789abcdef0",
        "tid": CONSUMER_TENANT,
        "preferred_username": "ann@outlook.example",
        "email": "ann@outlook.example",
        "name": "Ann Personal",
        "ver": "2.0",
    },
}


@dataclasses.dataclass(frozen=True)
class OidcSettings:
    """What the identity providers know. Change with `dataclasses.replace`."""

    google_clients: tuple[OidcClient, ...] = (GOOGLE_CLIENT,)
    google_accounts: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: dict(GOOGLE_ACCOUNTS)
    )
    google_error_logins: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: dict(GOOGLE_ERROR_LOGINS)
    )
    microsoft_tenants: tuple[str, ...] = (WORK_TENANT, CONSUMER_TENANT)
    microsoft_clients: tuple[OidcClient, ...] = (MICROSOFT_CLIENT, MICROSOFT_UNKNOWN_APP)
    microsoft_accounts: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: dict(MICROSOFT_ACCOUNTS)
    )
    microsoft_error_logins: Mapping[str, Mapping[str, Any]] = dataclasses.field(
        default_factory=lambda: dict(MICROSOFT_ERROR_LOGINS)
    )
    # Entra's multi-tenant authorities, served at /microsoft/<name>/v2.0 like the tenants:
    # "common" (every account), "organizations" (work accounts), "consumers" (personal).
    # Their discovery `issuer` is Entra's template ".../microsoft/{tenantid}/v2.0"
    # ("consumers": the consumer tenant's issuer) and each ID token's `iss` is the
    # issuer of the account's own tid; they never send RFC 9207 `iss`.
    microsoft_multi_tenant: tuple[str, ...] = ("common", "organizations", "consumers")
    # RFC 9207 `iss` in authorization responses. oidc-provider always sends it; Entra
    # does not, so set False here to check a client copes without it.
    google_authorization_response_iss: bool = True
    microsoft_authorization_response_iss: bool = True
    max_lifetime_seconds: int = 1800

    def issuer_configs(self) -> list[dict[str, Any]]:
        issuers: list[dict[str, Any]] = [
            {
                "path": "/google",
                "key_group": "google",
                "authorization_response_iss": self.google_authorization_response_iss,
                "clients": [c.to_config() for c in self.google_clients],
                "accounts": _plain(self.google_accounts),
                "error_logins": _plain(self.google_error_logins),
            }
        ]
        issuers.extend(
            {
                "path": f"/microsoft/{tenant}/v2.0",
                # Entra signs for every tenant with the same keys.
                "key_group": "microsoft",
                "authorization_response_iss": self.microsoft_authorization_response_iss,
                "clients": [c.to_config() for c in self.microsoft_clients],
                "accounts": {
                    login: dict(claims)
                    for login, claims in self.microsoft_accounts.items()
                    if claims.get("tid") == tenant
                },
                "error_logins": _plain(self.microsoft_error_logins),
            }
            for tenant in self.microsoft_tenants
        )
        issuers.extend(self._multi_tenant_config(name) for name in self.microsoft_multi_tenant)
        return issuers

    def _multi_tenant_config(self, name: str) -> dict[str, Any]:
        if name not in MULTI_TENANT_AUTHORITIES:
            msg = f"unknown multi-tenant authority {name!r}: use {MULTI_TENANT_AUTHORITIES}"
            raise ValueError(msg)
        accounts = {
            login: dict(claims)
            for login, claims in self.microsoft_accounts.items()
            if name == "common" or (claims.get("tid") == CONSUMER_TENANT) == (name == "consumers")
        }
        tenant = CONSUMER_TENANT if name == "consumers" else "{tenantid}"
        return {
            "path": f"/microsoft/{name}/v2.0",
            "key_group": "microsoft",
            "authorization_response_iss": False,
            "clients": [c.to_config() for c in self.microsoft_clients],
            "accounts": accounts,
            "error_logins": _plain(self.microsoft_error_logins),
            "discovery_issuer": f"{{origin}}/microsoft/{tenant}/v2.0",
            "id_token_issuer": "{origin}/microsoft/{tid}/v2.0",
        }


def _plain(value: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    return {key: dict(inner) for key, inner in value.items()}


def missing_requirement() -> str | None:
    """Why the server cannot start here (no node, no npm packages), or None."""
    if shutil.which("node") is None:
        return "`node` is not on PATH; run ./dev test to install it"
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        return f"{OIDC_DIR / 'node_modules'} is missing; run ./dev test to install it"
    return None


# --- certificates ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TestCertificates:
    ca_file: Path
    cert_file: Path
    key_file: Path


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_test_certificates(directory: Path) -> TestCertificates:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.timezone.utc)
    not_before, not_after = now - dt.timedelta(hours=1), now + dt.timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bpart_auth e2e test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    certs = TestCertificates(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server-key.pem",
    )
    certs.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certs.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key_file.write_bytes(_pem_key(key))
    certs.key_file.chmod(0o600)
    return certs


# --- PKCE and authorization URLs -------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A fresh (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --- driving the login and consent forms -----------------------------------------------


class _FormParser(html.parser.HTMLParser):
    """Collects <form> elements: action, method and their named inputs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._in_error = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "action": attributes.get("action", ""),
                    "method": attributes.get("method", "get").lower(),
                    "fields": {},
                }
            )
        elif tag in {"input", "button"} and self.forms and attributes.get("name"):
            self.forms[-1]["fields"][attributes["name"]] = attributes.get("value", "")
        elif "error" in attributes.get("class", "").split():
            self._in_error = True

    def handle_endtag(self, tag: str) -> None:
        if tag not in {"br", "input"}:
            self._in_error = False

    def handle_data(self, data: str) -> None:
        if self._in_error and data.strip():
            self.errors.append(data.strip())


class AuthorizeError(AssertionError):
    """The provider did not end at the client's redirect_uri."""


@dataclasses.dataclass
class OidcServer:
    """A running server.mjs: its issuers, clients and test CA."""

    origin: str
    settings: OidcSettings
    ca_bundle: str
    log_file: Path
    process: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False)

    @property
    def port(self) -> int:
        return int(self.origin.rsplit(":", 1)[1])

    @property
    def google_issuer(self) -> str:
        return f"{self.origin}/google"

    def microsoft_issuer(self, tenant: str = WORK_TENANT) -> str:
        """The issuer of one tenant: `https://127.0.0.1:PORT/microsoft/<tid>/v2.0`."""
        if tenant not in self.settings.microsoft_tenants:
            msg = f"tenant {tenant} is not served (tenants: {self.settings.microsoft_tenants})"
            raise ValueError(msg)
        return f"{self.origin}/microsoft/{tenant}/v2.0"

    def microsoft_authority(self, tenant: str = WORK_TENANT) -> str:
        """The MSAL authority of a tenant id or of "common"/"organizations"/"consumers".

        Like `https://login.microsoftonline.com/<tenant>`: MSAL appends
        `/v2.0/.well-known/openid-configuration` to find the metadata.
        """
        if tenant not in (*self.settings.microsoft_tenants, *self.settings.microsoft_multi_tenant):
            msg = f"{tenant} is not served by this server"
            raise ValueError(msg)
        return f"{self.origin}/microsoft/{tenant}"

    def microsoft_metadata_url(self, tenant: str = WORK_TENANT) -> str:
        """`<authority>/v2.0/.well-known/openid-configuration`, as for Entra."""
        return f"{self.microsoft_authority(tenant)}/v2.0/.well-known/openid-configuration"

    @property
    def google_client(self) -> OidcClient:
        return self.settings.google_clients[0]

    @property
    def microsoft_client(self) -> OidcClient:
        return self.settings.microsoft_clients[0]

    @property
    def redirect_uri(self) -> str:
        return self.google_client.redirect_uri

    def session(self) -> requests.Session:
        """A requests session that trusts the test CA and ignores the environment."""
        session = requests.Session()
        session.verify = self.ca_bundle
        # Else REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace `verify` on every request
        # (and *_PROXY variables apply).
        session.trust_env = False
        return session

    def discovery(self, issuer: str) -> dict[str, Any]:
        """The metadata at `issuer` (or any mount path) + /.well-known/openid-configuration."""
        with self.session() as session:
            response = session.get(f"{issuer}/.well-known/openid-configuration", timeout=10)
            response.raise_for_status()
            document: dict[str, Any] = response.json()
            return document

    def authorization_url(
        self,
        issuer: str,
        client: OidcClient,
        *,
        state: str,
        code_challenge: str | None,
        code_challenge_method: str = "S256",
        nonce: str | None = None,
        scope: str = "openid email profile",
        **extra: str,
    ) -> str:
        """The authorization request a client would redirect the browser to."""
        params = {
            "response_type": "code",
            "client_id": client.client_id,
            "redirect_uri": client.redirect_uri,
            "scope": scope,
            "state": state,
        }
        if nonce is not None:
            params["nonce"] = nonce
        if code_challenge is not None:
            params["code_challenge"] = code_challenge
            params["code_challenge_method"] = code_challenge_method
        params.update(extra)
        endpoint = self.discovery(issuer)["authorization_endpoint"]
        return f"{endpoint}?{urllib.parse.urlencode(params)}"

    def authorize(
        self,
        url: str,
        *,
        login: str,
        password: str = "any password",  # noqa: S107 - the fake IdP accepts any password
        session: requests.Session | None = None,
        max_steps: int = 12,
    ) -> dict[str, str]:
        """Sign in as `login` at the authorization URL; the redirect_uri's query parameters.

        Follows the provider's redirects, fills the login form (login = the account's key
        in the settings, or an error login) and the consent form, and stops at the
        first redirect to a registered redirect_uri without following it. A
        `response_mode=form_post` answer is read from its auto-submit form. Raises
        `AuthorizeError` when it ends anywhere else. A fresh session (no provider cookie,
        so always a login form) is used unless one is given.
        """
        own_session = session is None
        http = self.session() if session is None else session
        redirect_uris = {
            uri
            for c in (*self.settings.google_clients, *self.settings.microsoft_clients)
            for uri in c.redirect_uris
        }
        method, data = "GET", None
        try:
            for _ in range(max_steps):
                if _at_redirect_uri(url, redirect_uris):
                    return _query_params(url)
                response = http.request(
                    method, url, data=data, allow_redirects=False, verify=self.ca_bundle, timeout=10
                )
                if response.is_redirect:
                    url = urllib.parse.urljoin(url, response.headers["Location"])
                    method, data = "GET", None
                    continue
                parser = _FormParser()
                parser.feed(response.text)
                form = parser.forms[0] if parser.forms else None
                action = urllib.parse.urljoin(url, form["action"]) if form else ""
                # response_mode=form_post (oidc-provider answers errors this way with 400)
                if form and _at_redirect_uri(action, redirect_uris):
                    return {k: str(v) for k, v in form["fields"].items()}
                if response.status_code != 200 or form is None:
                    detail = "; ".join(parser.errors) or response.text[:500]
                    msg = f"authorize: {method} {url} answered {response.status_code}: {detail}"
                    raise AuthorizeError(msg)
                fields = dict(form["fields"])
                if fields.get("prompt") == "login":
                    fields.update(login=login, password=password)
                url, method, data = action, form["method"].upper(), fields
            msg = f"authorize: no redirect to a redirect_uri after {max_steps} steps (at {url})"
            raise AuthorizeError(msg)
        finally:
            if own_session:
                http.close()

    def token(self, issuer: str, client: OidcClient, **form: str) -> requests.Response:
        """POST to the issuer's token endpoint, authenticating as the client is registered."""
        endpoint = self.discovery(issuer)["token_endpoint"]
        auth = None
        data = dict(form)
        if client.token_endpoint_auth_method == "client_secret_basic":
            auth = (
                urllib.parse.quote(client.client_id, safe=""),
                urllib.parse.quote(client.client_secret, safe=""),
            )
        else:
            data.update(client_id=client.client_id, client_secret=client.client_secret)
        with self.session() as session:
            return session.post(endpoint, data=data, auth=auth, timeout=10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def close(self, timeout: float = 5.0) -> int | None:
        """Stop the server: close its stdin (it exits), then SIGTERM, then SIGKILL."""
        process = self.process
        if process is None:
            return None
        try:
            return self._stop(process, timeout)
        finally:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()

    @staticmethod
    def _stop(process: subprocess.Popen[bytes], timeout: float) -> int | None:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)  # its own process group (start_new_session)
            try:
                return process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                continue
        return process.poll()


def _at_redirect_uri(url: str, redirect_uris: set[str]) -> bool:
    base = url.split("?", 1)[0].split("#", 1)[0]
    return base in redirect_uris


def _query_params(url: str) -> dict[str, str]:
    parts = urllib.parse.urlsplit(url)
    return dict(urllib.parse.parse_qsl(parts.query or parts.fragment, keep_blank_values=True))


def start_oidc_server(settings: OidcSettings, workdir: Path) -> OidcServer:
    """Start server.mjs with these settings; returns once it is listening.

    Writes the test CA, the server key and certificate, config.json and server.log into
    `workdir`. Raises RuntimeError when the server does not become ready.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    certs = make_test_certificates(workdir)
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "tls": {"cert_file": str(certs.cert_file), "key_file": str(certs.key_file)},
        "max_lifetime_seconds": settings.max_lifetime_seconds,
        "issuers": settings.issuer_configs(),
    }
    config_file = workdir / "config.json"
    config_file.write_text(json.dumps(config, indent=2))
    log_file = workdir / "server.log"
    node = shutil.which("node") or "node"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [node, str(SERVER_SCRIPT), str(config_file)],
            cwd=OIDC_DIR,
            stdin=subprocess.PIPE,  # the lifeline: the server exits when it closes
            stdout=subprocess.PIPE,
            stderr=log,
            start_new_session=True,
        )
    server = OidcServer(
        origin="",
        settings=settings,
        ca_bundle=str(certs.ca_file),
        log_file=log_file,
        process=process,
    )
    try:
        server.origin = _wait_ready(process)
    except BaseException:
        server.close(timeout=2)
        raise
    return server


def _wait_ready(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                msg = f"oidc server not ready after {READY_TIMEOUT:.0f}s"
                raise RuntimeError(msg)
            if not selector.select(remaining):
                continue
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                msg = f"oidc server exited before READY (exit code {process.wait(timeout=5)})"
                raise RuntimeError(msg)
            buffer += chunk
    line = buffer.split(b"\n", 1)[0].decode()
    if not line.startswith("READY "):
        msg = f"oidc server printed {line!r} instead of READY"
        raise RuntimeError(msg)
    origin: str = json.loads(line.removeprefix("READY "))["origin"]
    return origin


@contextlib.contextmanager
def running_oidc_server(settings: OidcSettings, workdir: Path) -> Iterator[OidcServer]:
    """`start_oidc_server` as a context manager that always stops the server."""
    try:
        server = start_oidc_server(settings, workdir)
    except RuntimeError as exc:
        log = (workdir / "server.log").read_text(errors="replace")[-4000:]
        msg = f"{exc}\n--- {workdir / 'server.log'} ---\n{log}"
        raise RuntimeError(msg) from exc
    try:
        yield server
    finally:
        server.close()
