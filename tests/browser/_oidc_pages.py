"""bpart_auth's providers pointed at the browser tests' oidc-provider, and its pages played."""

from __future__ import annotations

import re

from bpart_auth import GoogleProvider, MicrosoftProvider

from ._harness import expect


def oidc_providers(server) -> list:
    """A `GoogleProvider` and a `MicrosoftProvider` ("organizations") on `server`."""
    google, microsoft = server.google_client, server.microsoft_client
    return [
        GoogleProvider(
            client_id=google.client_id,
            client_secret=google.client_secret,
            metadata_url=f"{server.google_issuer}/.well-known/openid-configuration",
            session=server.session(),
        ),
        MicrosoftProvider(
            client_id=microsoft.client_id,
            client_secret=microsoft.client_secret,
            authority_host=f"{server.origin}/microsoft",
            tenant="organizations",
            session=server.session(),
        ),
    ]


def provider_login(page, origin: str, login: str) -> None:
    """oidc-provider's login form (any password), then its consent page when it asks."""
    expect(page).to_have_url(re.compile(rf"^{re.escape(origin)}/.+/interaction/"))
    login_url = page.url
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_url(lambda url: url != login_url)
    if page.url.startswith(origin):  # the consent page, on a first grant
        page.get_by_role("button", name="Continue").click()
