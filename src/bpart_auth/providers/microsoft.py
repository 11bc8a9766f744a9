"""Sign in with Microsoft (Entra ID): msal's code flow, our own ID-token checks.

msal drives the authorization code flow (PKCE, state, its own nonce) but does not
verify the ID token's signature, nor a multi-tenant issuer; the shared validator
does both here. The identity is (tid, oid), never an email.
"""

from __future__ import annotations

import hashlib
import re
import threading
import warnings
from typing import TYPE_CHECKING, Any, Final

import requests

from bpart_auth._idtoken import validate_id_token
from bpart_auth.errors import (
    AdminConsentRequired,
    ConfigurationError,
    ConsentDeclined,
    InvalidFlowState,
    InvalidIdToken,
    ProviderError,
    ProviderUnavailable,
    TenantNotAllowed,
)
from bpart_auth.models import Identity, ProviderName, VerifiedIdentity
from bpart_auth.providers._oidc import OIDCClient, require_credentials

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping

    import msal

    from bpart_auth.flowstate import FlowState

MICROSOFT_AUTHORITY_HOST: Final = "https://login.microsoftonline.com"
CONSUMER_TENANT: Final = "9188040d-6c67-4c5b-b112-36a304b66dad"
"""The tenant id every personal Microsoft account carries."""
MULTI_TENANT: Final = frozenset({"common", "organizations", "consumers"})
# msal adds openid and profile itself and refuses them as input; no refresh tokens.
_SCOPES: Final = ["email"]
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_DOMAIN = re.compile(r"(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
_AADSTS = re.compile(r"AADSTS(\d{4,7})")
_KNOWN_HOSTS: Final = frozenset(
    {
        "https://login.microsoftonline.com",
        "https://login.microsoftonline.us",
        "https://login.partner.microsoftonline.cn",
    }
)

# AADSTS codes (Microsoft Entra authentication and authorization error codes).
_ADMIN_CONSENT: Final = frozenset({"65001", "90094", "90095", "650056"})
_DECLINED: Final = frozenset({"65004"})
_TENANT_REFUSED: Final = frozenset({"50020", "500200", "50194", "90072"})
_MESSAGES: Final[Mapping[str, str]] = {
    "50105": "Your organization hasn't given you access to this app. "
    "Ask your IT department to assign it to you.",
    "53003": "Your organization's access policies blocked this sign-in. "
    "Please contact your IT department.",
    "50011": "Sign-in with Microsoft is not set up correctly here (redirect address). "
    "Please tell the site's administrator.",
    "700016": "This app is not registered for your organization's directory. "
    "Please tell the site's administrator.",
    "7000215": "Sign-in with Microsoft is not set up correctly here (client secret). "
    "Please tell the site's administrator.",
    "7000222": "Sign-in with Microsoft is not set up correctly here (expired client "
    "secret). Please tell the site's administrator.",
}


def _forgetful_cache(msal_module: Any) -> Any:  # noqa: ANN401 - msal is untyped
    """A token cache that keeps nothing: sign-in needs no stored tokens.

    msal's default in-memory cache keeps the access token, ID token and account of
    every sign-in for the life of the process: memory that only grows, and personal
    data kept for no purpose.
    """

    class ForgetfulCache(msal_module.TokenCache):  # type: ignore[misc]  # msal is untyped (Any base)
        def add(self, event: Any, **kwargs: Any) -> None:  # noqa: ANN401
            del event, kwargs

    return ForgetfulCache()


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
        session: A `requests.Session` for every request (CA bundle, proxy).
        timeout: Seconds per request.

    Raises:
        ConfigurationError: A missing client id or secret, a bad tenant, tenant id
            or authority host.

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
        if not host.startswith("https://"):
            raise ConfigurationError(detail="microsoft: authority_host must be https")
        self.authority_host = host
        self.client_id = client_id
        self._client_secret = client_secret
        self._session = session if session is not None else requests.Session()
        self._timeout = timeout
        self._oidc = OIDCClient(
            provider="microsoft",
            client_id=client_id,
            client_secret=client_secret,
            metadata_url=f"{host}/{self.tenant}/v2.0/.well-known/openid-configuration",
            scopes=(),
            session=self._session,
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
        """See `Provider.authorization_url`: msal's URL, with msal's nonce and PKCE kept."""
        app = self._app()
        with warnings.catch_warnings():
            # msal recommends form_post. A form_post callback is a cross-site POST, on
            # which browsers withhold SameSite=Lax session cookies, so the app would
            # lose the flow state; the code in the query is PKCE-bound and single-use.
            warnings.filterwarnings("ignore", message="response_mode='form_post'")
            try:
                msal_flow = app.initiate_auth_code_flow(
                    _SCOPES,
                    redirect_uri=flow.redirect_uri,
                    state=flow.state,
                    prompt="select_account",
                    response_mode="query",
                )
            except ValueError as exc:
                raise ConfigurationError(detail=f"microsoft: msal refused: {exc}") from exc
        return str(msal_flow["auth_uri"]), {
            "msal_code_verifier": msal_flow["code_verifier"],
            "msal_nonce": msal_flow["nonce"],
            "msal_scope": " ".join(msal_flow["scope"]),
        }

    def complete(self, flow: FlowState, params: Mapping[str, str]) -> VerifiedIdentity:
        """See `Provider.complete`."""
        self._check_issuer_parameter(params)
        if "error" in params:
            raise self._error(
                params["error"], params.get("error_description"), params.get("error_subcode")
            )
        msal_flow = {
            "state": flow.state,
            "redirect_uri": flow.redirect_uri,
            "scope": flow.extra["msal_scope"].split(),
            "code_verifier": flow.extra["msal_code_verifier"],
            "nonce": flow.extra["msal_nonce"],
            "claims_challenge": None,
        }
        try:
            result = self._app().acquire_token_by_auth_code_flow(msal_flow, dict(params))
        except ValueError as exc:  # msal: state mismatch, or a malformed response
            raise InvalidFlowState(detail=f"microsoft: msal refused the callback: {exc}") from exc
        except RuntimeError as exc:  # msal: the ID token's nonce is not the flow's
            raise InvalidIdToken(provider="microsoft", detail=f"nonce: {exc}") from exc
        except requests.RequestException as exc:
            raise ProviderUnavailable(provider="microsoft", detail=str(exc)) from exc
        except Exception as exc:  # the msal boundary: nothing of msal's gets out raw
            raise ProviderError(provider="microsoft", detail=f"msal failed: {exc!r}") from exc
        if "error" in result:
            raise self._error(str(result["error"]), result.get("error_description"), None)
        id_token = result.get("id_token")
        if not isinstance(id_token, str):
            raise ProviderError(provider="microsoft", detail="token response without id_token")
        # msal sends SHA-256(nonce) as the nonce and keeps the plain one.
        nonce = hashlib.sha256(flow.extra["msal_nonce"].encode("ascii")).hexdigest()
        claims = validate_id_token(
            id_token,
            keys=self._oidc.keys(),
            provider="microsoft",
            issuer=self._issuer_matches,
            audience=self.client_id,
            nonce=nonce,
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
            raise InvalidFlowState(detail=f"microsoft: callback iss {returned!r} is not ours")

    def _identity(self, claims: Mapping[str, Any]) -> VerifiedIdentity:
        tenant_id, object_id = claims.get("tid"), claims.get("oid")
        if not isinstance(tenant_id, str) or not isinstance(object_id, str) or not object_id:
            raise InvalidIdToken(provider="microsoft", detail="tid or oid missing")
        tenant_id = tenant_id.lower()
        self._check_tenant_allowed(tenant_id)
        email = claims.get("email")
        return VerifiedIdentity(
            identity=Identity("microsoft", tenant_id, object_id),
            email=email if isinstance(email, str) else None,
            email_verified=False,  # Entra does not verify `email`: never trusted
            name=str(claims.get("name") or ""),
            tenant_id=tenant_id,
            claims=claims,
        )

    def _check_tenant_allowed(self, tenant_id: str) -> None:
        personal = tenant_id == CONSUMER_TENANT
        if self.tenant == "organizations" and personal:
            raise TenantNotAllowed(
                "Personal Microsoft accounts can't sign in here. "
                "Please use your work or school account.",
                provider="microsoft",
                detail="a personal account where only organizations are allowed",
            )
        if self.tenant == "consumers" and not personal:
            raise TenantNotAllowed(provider="microsoft", detail="only personal accounts allowed")
        if _GUID.fullmatch(self.tenant) and tenant_id != self.tenant:
            raise TenantNotAllowed(provider="microsoft", detail=f"tid {tenant_id} is not ours")
        if self.allowed_tenants is not None and tenant_id not in self.allowed_tenants:
            raise TenantNotAllowed(provider="microsoft", detail=f"tid {tenant_id} not allowed")

    def _issuer_matches(self, claims: Mapping[str, Any]) -> bool:
        """The issuer must be the discovery issuer with the token's own `tid` filled in."""
        tenant_id = claims.get("tid")
        if not isinstance(tenant_id, str) or not _GUID.fullmatch(tenant_id.lower()):
            return False
        template = str(self._oidc.metadata()["issuer"])
        expected = template.replace("{tenantid}", tenant_id)
        return bool(claims.get("iss") == expected)

    def _error(self, error: str, description: str | None, subcode: str | None) -> ProviderError:
        """Map an OAuth/Entra error to our typed errors, keeping Entra's code."""
        match = _AADSTS.search(description or "")
        code = match.group(1) if match else None
        provider_code = f"AADSTS{code}" if code else error
        if code in _ADMIN_CONSENT or (code is None and error == "consent_required"):
            return AdminConsentRequired(
                provider="microsoft",
                tenant=self.tenant,
                consent_url=self.consent_url,
                provider_code=provider_code,
                description=description,
            )
        if code in _DECLINED or subcode == "cancel" or (error == "access_denied" and not code):
            return ConsentDeclined(
                provider="microsoft", provider_code=provider_code, description=description
            )
        if code in _TENANT_REFUSED:
            return TenantNotAllowed(
                provider="microsoft", provider_code=provider_code, description=description
            )
        return ProviderError(
            _MESSAGES.get(code or ""),
            provider="microsoft",
            provider_code=provider_code,
            description=description,
        )

    def _app(self) -> msal.ConfidentialClientApplication:
        """Msal's application, made on first use: its constructor calls the network."""
        app = self._msal
        if app is not None:
            return app
        import msal  # noqa: PLC0415 - imported late, like the network call it makes

        with self._lock:
            if self._msal is None:
                known = self.authority_host in _KNOWN_HOSTS
                try:
                    self._msal = msal.ConfidentialClientApplication(
                        self.client_id,
                        client_credential=self._client_secret,
                        authority=f"{self.authority_host}/{self.tenant}",
                        http_client=self._session,
                        timeout=self._timeout,
                        validate_authority=known,
                        instance_discovery=None if known else False,
                        exclude_scopes=["offline_access"],
                        token_cache=_forgetful_cache(msal),
                    )
                except ValueError as exc:
                    raise ConfigurationError(detail=f"microsoft: msal refused: {exc}") from exc
                except requests.RequestException as exc:
                    raise ProviderUnavailable(
                        provider="microsoft", detail=f"authority discovery failed: {exc}"
                    ) from exc
            return self._msal
