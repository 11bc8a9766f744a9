"""Sign in with Microsoft (Entra ID): msal's code flow, our own ID-token checks.

msal exchanges the code (with the flow's own PKCE verifier and nonce) but does not
verify the ID token's signature, nor a multi-tenant issuer; the shared validator
does both here. The identity is (tid, oid), never an email.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import TYPE_CHECKING, Any, Final

from bpart_auth._input import MAX_EMAIL_INPUT
from bpart_auth.errors import (
    AuthError,
    ConfigurationError,
    InvalidFlowState,
    InvalidIdToken,
    ProviderError,
    TenantNotAllowed,
)
from bpart_auth.models import Identity, ProviderName, VerifiedIdentity
from bpart_auth.oidc.client import (
    OIDCClient,
    endpoint_hosts_setting,
    https_authority,
    require_credentials,
)
from bpart_auth.oidc.idtoken import text_claim, validate_id_token
from bpart_auth.providers._entra_errors import entra_error
from bpart_auth.providers._msal import new_application

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    import msal
    import requests

    from bpart_auth.oidc.client import IssuerPin
    from bpart_auth.oidc.flowstate import FlowState

MICROSOFT_AUTHORITY_HOST: Final = "https://login.microsoftonline.com"
CONSUMER_TENANT: Final = "9188040d-6c67-4c5b-b112-36a304b66dad"
"""The tenant id every personal Microsoft account carries."""
MULTI_TENANT: Final = frozenset({"common", "organizations", "consumers"})
# What msal asks for: email, plus the openid and profile it adds itself (it refuses
# them as input); no offline_access, so no refresh tokens.
_MSAL_SCOPES: Final = ("email", "openid", "profile")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAX_OBJECT_ID: Final = 255  # Entra's oid is a GUID; fakes may use short names
_MAX_NAME: Final = 1024  # a display name; the store keeps its first 200 characters
_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_KNOWN_HOSTS: Final = frozenset(
    {
        "https://login.microsoftonline.com",
        "https://login.microsoftonline.us",
        "https://login.partner.microsoftonline.cn",
    }
)


def _hashed_nonce(nonce: str) -> str:
    """The nonce sent to Entra: msal's spelling, the hex SHA-256 of the flow's nonce."""
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


def _discovery_issuers(host: str, tenant: str) -> IssuerPin:
    """The issuer Entra's discovery document names for an authority.

    `{tenantid}` is a literal template for common and organizations; consumers is
    the consumer tenant's issuer; a tenant id its own; a verified domain, the issuer
    of its tenant's id, whatever that id is.
    """
    if tenant in {"common", "organizations"}:
        return frozenset({f"{host}/{{tenantid}}/v2.0"})
    if tenant == "consumers":
        return frozenset({f"{host}/{CONSUMER_TENANT}/v2.0"})
    if _GUID.fullmatch(tenant):
        return frozenset({f"{host}/{tenant}/v2.0"})
    return re.compile(f"{re.escape(host)}/({_GUID.pattern})/v2\\.0")


def _check_tenant(tenant: object) -> str:
    if not isinstance(tenant, str):
        raise ConfigurationError(detail="microsoft: tenant must be a str")
    value = tenant.strip().lower()
    if value in MULTI_TENANT or _GUID.fullmatch(value) or _DOMAIN.fullmatch(value):
        return value
    raise ConfigurationError(
        detail=f"microsoft: tenant {tenant!r} is not common, organizations, consumers, "
        "a tenant id or a domain"
    )


class MicrosoftProvider:
    """Sign in with Microsoft: work and school accounts, and personal ones if allowed.

    The identity is the token's tenant id and object id (`tid`, `oid`). The
    `email`, `preferred_username` and `upn` claims never find an account (a tenant
    admin can set any unverified email on a user: the nOAuth account takeover), so
    only an identity already linked to an account signs in.

    Args:
        client_id: The app registration's application (client) id.
        client_secret: A client secret of the registration.
        tenant: `"organizations"` (work and school accounts of any tenant, the
            default), `"common"` (those and personal accounts), `"consumers"`
            (personal accounts only), a tenant id, or a tenant's verified domain.
        allowed_tenants: When given, only these tenant ids may sign in.
        authority_host: The cloud's login host; national clouds and tests change it.
            The discovery document must name the issuer
            `{authority_host}/{tenantid}/v2.0` (the tenant's own id for a tenant id
            or domain, the consumer tenant's for `consumers`).
        endpoint_hosts: The hosts (`host` or `host:port`) the discovery document's
            authorization, token and keys endpoints must be on; by default the
            authority host's.
        session: A `requests.Session` for every request (CA bundle, proxy).
        timeout: Seconds per request.

    Raises:
        ConfigurationError: A missing client id or secret, a bad tenant, tenant id,
            authority host or endpoint host.

    Examples:
        >>> microsoft = MicrosoftProvider(client_id="00000000-0000-0000-0000-000000000001",
        ...                               client_secret="secret", tenant="organizations")
        >>> microsoft.name, microsoft.tenant
        ('microsoft', 'organizations')
    """

    email_sign_in: Final = False

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        tenant: str = "organizations",
        allowed_tenants: Collection[str] | None = None,
        authority_host: str = MICROSOFT_AUTHORITY_HOST,
        endpoint_hosts: Collection[str] | None = None,
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        require_credentials("microsoft", client_id, client_secret)
        self.tenant = _check_tenant(tenant)
        if isinstance(allowed_tenants, str):
            raise ConfigurationError(detail="microsoft: allowed_tenants must be a list")
        self.allowed_tenants = None
        if allowed_tenants is not None:
            cleaned = frozenset(str(t).strip().lower() for t in allowed_tenants)
            if not cleaned or not all(_GUID.fullmatch(t) for t in cleaned):
                raise ConfigurationError(
                    detail="microsoft: allowed_tenants must be tenant ids (GUIDs)"
                )
            self.allowed_tenants = cleaned
        host = authority_host.rstrip("/")
        authority = https_authority(host)
        if authority is None:
            raise ConfigurationError(detail="microsoft: authority_host must be https")
        self.authority_host = host
        self.client_id = client_id
        self._client_secret = client_secret
        self._oidc = OIDCClient(
            provider="microsoft",
            client_id=client_id,
            client_secret=client_secret,
            metadata_url=f"{host}/{self.tenant}/v2.0/.well-known/openid-configuration",
            issuers=_discovery_issuers(host, self.tenant),
            endpoint_hosts=(
                frozenset({authority})
                if endpoint_hosts is None
                else endpoint_hosts_setting("microsoft", endpoint_hosts)
            ),
            scopes=_MSAL_SCOPES,
            session=session,
            timeout=timeout,
        )
        self._lock = threading.Lock()
        self._msal: msal.ConfidentialClientApplication | None = None

    @property
    def name(self) -> ProviderName:
        """Always `"microsoft"`."""
        return "microsoft"

    @property
    def consent_url(self) -> str:
        """Where an organization's admin approves the app for the whole tenant."""
        return f"{self.authority_host}/{self.tenant}/adminconsent?client_id={self.client_id}"

    def authorization_url(self, flow: FlowState) -> tuple[str, Mapping[str, str]]:
        """See `Provider.authorization_url`: the request msal would build, from the flow's values.

        The flow's own PKCE verifier and nonce are the only ones: the URL carries
        the verifier's S256 challenge and, as msal does, the SHA-256 of the nonce
        (msal checks the ID token's nonce against that hash at the callback). So
        nothing of msal's goes into the sealed state.

        A form_post callback (which msal recommends) is a cross-site POST, on which
        browsers withhold SameSite=Lax session cookies, so the app would lose the
        flow state; the code in the query is PKCE-bound and single-use.
        """
        self._app()  # msal's settings are checked at the first sign-in, as before
        url = self._oidc.authorization_url(
            flow,
            nonce=_hashed_nonce(flow.nonce),
            response_mode="query",
            client_info="1",
            prompt="select_account",
        )
        return url, {}

    def complete(self, flow: FlowState, params: Mapping[str, str]) -> VerifiedIdentity:
        """See `Provider.complete`."""
        self._check_issuer_parameter(params)
        if "error" in params:
            raise self._error(
                params["error"], params.get("error_description"), params.get("error_subcode")
            )
        code = params.get("code")
        if not code:
            raise ProviderError(provider="microsoft", detail="callback without code or error")
        msal_flow = {
            "state": flow.state,
            "redirect_uri": flow.redirect_uri,
            "scope": list(_MSAL_SCOPES),
            "code_verifier": flow.code_verifier,
            "nonce": flow.nonce,
            "claims_challenge": None,
        }
        # Our state check already ran; msal gets only what it needs (no client_info:
        # a routing hint it would decode, unchecked, from the request).
        response = {"state": flow.state, "code": code}
        try:
            result = self._app().acquire_token_by_auth_code_flow(msal_flow, response)
        except AuthError:  # from our HTTP client inside msal: already typed
            raise
        except RuntimeError as exc:  # msal: the ID token's nonce is not the flow's
            raise InvalidIdToken(provider="microsoft", detail=f"nonce: {exc}") from exc
        except Exception as exc:  # the msal boundary: nothing of msal's gets out raw
            raise ProviderError(provider="microsoft", detail=f"msal failed: {exc!r}") from exc
        if "error" in result:
            raise self._error(str(result["error"]), result.get("error_description"), None)
        id_token = result.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError(provider="microsoft", detail="token response without id_token")
        claims = validate_id_token(
            id_token,
            keys=self._oidc.keys(),
            provider="microsoft",
            issuer=self._issuer_matches,
            audience=self.client_id,
            nonce=_hashed_nonce(flow.nonce),
        )
        return self._identity(claims)

    def _check_issuer_parameter(self, params: Mapping[str, str]) -> None:
        """Mix-up defence (RFC 9207): an `iss` in the callback must be this cloud's.

        Entra's issuer names the user's tenant, unknown before the token, so any
        tenant id fills the discovery document's `{tenantid}` template.
        """
        returned = params.get("iss")
        if returned is None:
            return
        template = str(self._oidc.metadata()["issuer"])
        pattern = re.escape(template).replace(re.escape("{tenantid}"), _GUID.pattern)
        if not re.fullmatch(pattern, returned):
            raise InvalidFlowState(detail=f"microsoft: callback iss {returned[:200]!r} is not ours")

    def _identity(self, claims: Mapping[str, Any]) -> VerifiedIdentity:
        tenant_id = text_claim(claims, "tid", limit=36)
        object_id = text_claim(claims, "oid", limit=_MAX_OBJECT_ID)
        if tenant_id is None or not object_id:
            raise InvalidIdToken(provider="microsoft", detail="tid or oid missing or malformed")
        tenant_id = tenant_id.lower()
        self._check_tenant_allowed(tenant_id)
        return VerifiedIdentity(
            identity=Identity("microsoft", tenant_id, object_id),
            email=text_claim(claims, "email", limit=MAX_EMAIL_INPUT),
            email_verified=False,  # Entra does not verify `email`: never trusted
            name=text_claim(claims, "name", limit=_MAX_NAME) or "",
            tenant_id=tenant_id,
            claims=claims,
        )

    def _own_tenant(self) -> str | None:
        """The one tenant id this authority signs in, or None for common/organizations."""
        if self.tenant == "consumers":
            return CONSUMER_TENANT
        if _GUID.fullmatch(self.tenant):
            return self.tenant
        if self.tenant in MULTI_TENANT:
            return None
        # A domain: the pinned discovery issuer names its tenant id.
        issuer = str(self._oidc.metadata()["issuer"])
        return issuer[len(self.authority_host) + 1 : -len("/v2.0")]

    def _check_tenant_allowed(self, tenant_id: str) -> None:
        """The signature-checked `tid` against the authority and `allowed_tenants`."""
        personal = tenant_id == CONSUMER_TENANT
        if self.tenant == "organizations" and personal:
            raise TenantNotAllowed(
                TenantNotAllowed.personal_account_message,
                provider="microsoft",
                detail="a personal account where only organizations are allowed",
            )
        own = self._own_tenant()
        if own is not None and tenant_id != own:
            raise TenantNotAllowed(
                provider="microsoft",
                detail="a work or school account where only personal accounts are allowed"
                if self.tenant == "consumers"
                else f"tid {tenant_id} is not the app's tenant {own}",
            )
        if self.allowed_tenants is not None and tenant_id not in self.allowed_tenants:
            raise TenantNotAllowed(provider="microsoft", detail=f"tid {tenant_id} not allowed")

    def _issuer_matches(self, claims: Mapping[str, Any]) -> bool:
        """The issuer must be this cloud's issuer of the token's own `tid`.

        Which tenants may sign in is checked afterwards, on the fully validated
        token (`_check_tenant_allowed`), so a foreign tenant is `TenantNotAllowed`.
        """
        tenant_id = claims.get("tid")
        if not isinstance(tenant_id, str) or not _GUID.fullmatch(tenant_id.lower()):
            return False
        return bool(claims.get("iss") == f"{self.authority_host}/{tenant_id}/v2.0")

    def _error(self, error: str, description: str | None, subcode: str | None) -> ProviderError:
        return entra_error(
            error,
            description,
            subcode,
            tenant=self.tenant,
            consent_url=self.consent_url,
        )

    def _app(self) -> msal.ConfidentialClientApplication:
        """Msal's application, made on first use: its constructor reads the discovery."""
        app = self._msal
        if app is not None:
            return app
        self._oidc.metadata()  # fetched and checked first, outside our lock
        with self._lock:
            if self._msal is None:
                try:
                    self._msal = new_application(
                        self._oidc,
                        client_secret=self._client_secret,
                        authority=f"{self.authority_host}/{self.tenant}",
                        known_host=self.authority_host in _KNOWN_HOSTS,
                    )
                except AuthError:
                    raise
                except Exception as exc:  # msal refused the settings
                    raise ConfigurationError(detail=f"microsoft: msal refused: {exc}") from exc
            return self._msal
