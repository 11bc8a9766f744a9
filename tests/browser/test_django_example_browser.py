"""Chromium through examples/django/django_example.py, against oidc-provider's real pages.

The example's own tests use Django's test client and the in-process fakes; this one
checks, in a real browser, that Django's CSRF middleware accepts the example's forms as
Chromium posts them, that its signed-cookie session survives the providers' redirects,
and that every flow ends on the right page.

Django's settings are once per process, so the example is imported under the name its
own tests use (`django_example`), whichever runs first.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from ._harness import expect
from ._oidc_pages import provider_login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "django"
PASSWORD = "correct horse battery staple"
ANN = "ann@example.com"  # oidc-provider's Google account "ann" has this email, verified
MANAGER = "manager@contoso.example"


@pytest.fixture
def example(app_server, oidc_server, example_auth, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    import django_example  # noqa: PLC0415 - found on the path just added
    from django.core.wsgi import get_wsgi_application  # noqa: PLC0415

    auth = example_auth
    django_example.configure(auth, secret_key="a Django key for the browser test")
    assert sys.modules["django_example"] is django_example
    app_server.serve(get_wsgi_application())
    return auth, app_server.url, oidc_server.origin


def sign_out(page, base):
    page.goto(f"{base}/")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/login")


def test_every_flow_of_the_django_example(page, steps, example):
    auth, base, origin = example
    auth.create_account(email=ANN, password=PASSWORD)

    with steps("password sign-in"):
        page.goto(f"{base}/login")
        page.locator("input[name=email]").fill(ANN)
        page.locator("input[name=password]").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()

    with steps("link Microsoft"):
        page.goto(f"{base}/profile")
        page.get_by_role("button", name="Link Microsoft").click()
        provider_login(page, origin, "work")
        expect(page.get_by_text("Your Microsoft account is now linked.")).to_be_visible()
        expect(page.get_by_role("button", name="Unlink Microsoft")).to_be_visible()

    with steps("invite a manager, accepted with Microsoft"):
        page.goto(f"{base}/admin/invites")
        page.locator("input[name=email]").fill(MANAGER)
        page.get_by_role("button", name="Invite").click()
        notice = page.get_by_text(f"Invitation for {MANAGER}:").inner_text()
        link = re.search(r"https?://\S+/invite/\S+", notice).group(0)
        sign_out(page, base)
        page.goto(link)
        page.get_by_role("button", name="Accept with Microsoft").click()
        provider_login(page, origin, "work-no-email")
        expect(page.get_by_text(f"Signed in as {MANAGER}.")).to_be_visible()
        sign_out(page, base)

    with steps("Google by matching email, then unlinked"):
        page.get_by_role("button", name="Sign in with Google").click()
        provider_login(page, origin, "ann")
        expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()
        page.goto(f"{base}/profile")
        page.get_by_role("button", name="Unlink Google").click()
        expect(page.get_by_text("Google is no longer linked.")).to_be_visible()
        expect(page.get_by_role("button", name="Link Google")).to_be_visible()
        sign_out(page, base)

    with steps("sign in with the linked Microsoft account"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        provider_login(page, origin, "work")
        expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()
        sign_out(page, base)

    with steps("an organization that requires admin consent"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        provider_login(page, origin, "needs-admin")
        expect(page.get_by_text("Your organization must approve this app")).to_be_visible()
        expect(page.locator("a[href*='/adminconsent?client_id=']")).to_be_visible()
