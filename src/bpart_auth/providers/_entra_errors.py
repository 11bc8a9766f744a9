"""Entra's errors (error redirects and token endpoint answers) as our typed errors.

Entra sends an OAuth `error` and, in `error_description`, its own AADSTS code
(Microsoft Entra authentication and authorization error codes). The AADSTS code
decides the class and is kept as `provider_code`; the OAuth `error` is kept beside
it as `oauth_error`; the description stays out of the message (it is for logs).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from bpart_auth.errors import (
    AdminConsentRequired,
    ConsentDeclined,
    ProviderError,
    TenantNotAllowed,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

_AADSTS: Final = re.compile(r"AADSTS(\d{4,7})")
# AADSTS codes (Microsoft Entra authentication and authorization error codes).
_ADMIN_CONSENT: Final = frozenset({"65001", "90094", "90095", "650056"})
_DECLINED: Final = frozenset({"65004"})
_TENANT_REFUSED: Final = frozenset({"50020", "500200", "50194", "90072"})
AADSTS_MESSAGES: Final[Mapping[str, str]] = {
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


def entra_error(
    error: str,
    description: str | None,
    subcode: str | None,
    *,
    tenant: str,
    consent_url: str,
) -> ProviderError:
    """The typed error for an Entra error, keeping its AADSTS code and OAuth error.

    Args:
        error: The OAuth `error`.
        description: Entra's `error_description`, which starts with the AADSTS code.
        subcode: Entra's `error_subcode` (`"cancel"`), when the redirect has one.
        tenant: The configured tenant, for `AdminConsentRequired`.
        consent_url: The admin-consent URL, for `AdminConsentRequired`.

    Returns:
        `AdminConsentRequired`, `ConsentDeclined`, `TenantNotAllowed`, or a
        `ProviderError` with a message for the AADSTS codes an app meets most.

    Examples:
        >>> error = entra_error("invalid_request", "AADSTS50020: User account from another "
        ...                     "tenant", None, tenant="organizations", consent_url="")
        >>> error.code, error.provider_code, error.oauth_error
        ('tenant_not_allowed', 'AADSTS50020', 'invalid_request')
    """
    match = _AADSTS.search(description or "")
    code = match.group(1) if match else None
    provider_code = f"AADSTS{code}" if code else error
    if code in _ADMIN_CONSENT or (code is None and error == "consent_required"):
        return AdminConsentRequired(
            provider="microsoft",
            tenant=tenant,
            consent_url=consent_url,
            provider_code=provider_code,
            oauth_error=error,
            description=description,
        )
    if code in _DECLINED or subcode == "cancel" or (error == "access_denied" and not code):
        return ConsentDeclined(
            provider="microsoft",
            provider_code=provider_code,
            oauth_error=error,
            description=description,
        )
    if code in _TENANT_REFUSED:
        return TenantNotAllowed(
            provider="microsoft",
            provider_code=provider_code,
            oauth_error=error,
            description=description,
        )
    return ProviderError(
        AADSTS_MESSAGES.get(code or ""),
        provider="microsoft",
        provider_code=provider_code,
        oauth_error=error,
        description=description,
    )
