"""Chromium through examples/flask/flask_example.py, against oidc-provider's real pages.

The example's own tests (examples/flask) drive it with Flask's test client and the
in-process fakes; this one checks what only a browser shows: that its forms pass its
cross-origin check as Chromium sends them, that the session cookie survives the
providers' redirects (SameSite=Lax), and that every flow ends on the right page.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from ._harness import expect
from ._oidc_pages import provider_login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask" / "flask_example.py"
PASSWORD = "correct horse battery staple"
ANN = "ann@example.com"  # oidc-provider's Google account "ann" has this email, verified


def load_example():
    spec = importlib.util.spec_from_file_location("flask_example_under_test", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example(app_server, oidc_server, example_auth):
    auth = example_auth
    app = load_example().create_app(auth, secret_key="a Flask key", secure_cookies=False)
    app.testing = True
    app_server.serve(app)
    return auth, app_server.url, oidc_server.origin


def flash(page):
    return page.locator("p.flash")


def test_every_flow_of_the_flask_example(page, steps, example):
    auth, base, origin = example
    auth.create_account(email=ANN, password=PASSWORD)

    with steps("password sign-in"):
        page.goto(f"{base}/")
        page.get_by_placeholder("Email").fill(ANN)
        page.get_by_placeholder("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()

    with steps("link Microsoft"):
        page.get_by_role("button", name="Link Microsoft").click()
        provider_login(page, origin, "work")
        expect(flash(page)).to_have_text(
            "Your Microsoft account is now linked. You can sign in with Microsoft from now on."
        )
        expect(page.get_by_role("button", name="Unlink Microsoft")).to_be_visible()

    with steps("invite a manager, accepted with Microsoft"):
        page.get_by_placeholder("Email").fill("manager@contoso.example")
        page.get_by_role("button", name="Invite a manager").click()
        link = re.search(r"https?://\S+/invite/\S+", flash(page).inner_text()).group(0)
        page.get_by_role("button", name="Sign out").click()
        page.goto(link)
        page.get_by_role("button", name="Accept with Microsoft").click()
        provider_login(page, origin, "work-no-email")
        expect(flash(page)).to_have_text(
            "Welcome! Your account is ready; sign in with Microsoft from now on."
        )
        expect(page.get_by_text("Signed in as manager@contoso.example.")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()

    with steps("Google by matching email, then unlinked"):
        page.get_by_role("button", name="Sign in with Google").click()
        provider_login(page, origin, "ann")
        expect(flash(page)).to_have_text("You are signed in with Google.")
        page.get_by_role("button", name="Unlink Google").click()
        expect(page.get_by_role("button", name="Link Google")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()

    with steps("sign in with the linked Microsoft account"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        provider_login(page, origin, "work")
        expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()

    with steps("an organization that requires admin consent"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        provider_login(page, origin, "needs-admin")
        expect(page.get_by_role("heading")).to_have_text("Your organization must approve this app")
        expect(page.locator("a[href*='/adminconsent?client_id=']")).to_be_visible()
