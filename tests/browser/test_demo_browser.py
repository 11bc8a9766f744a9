"""Chromium clicks through the demo (`bpart-auth demo`), on its fakes and on oidc-provider.

The tour is docs/demo.md's "What to click", step by step: a password sign-in, an
invitation accepted with Microsoft, Microsoft linked from the profile, Google by
matching email, unlinking, and the "your organization blocks external apps" page. It
runs twice: against the demo's own fake Google and Microsoft pages, and against the npm
oidc-provider's real login and consent pages (Google-style and Entra-style issuers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Protocol

import pytest

from bpart_auth._demo import ADMIN_EMAIL, ADMIN_PASSWORD, build
from bpart_auth._demo.fakes import CONTOSO, FABRIKAM
from bpart_auth.providers.microsoft import CONSUMER_TENANT

from ._harness import expect
from ._oidc_pages import oidc_providers, provider_login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

MANAGER = "manager@contoso.example"
BLOCKED = "Your organization blocks external apps"


class Players(Protocol):
    """Plays the user on the identity provider's pages, whichever they are."""

    admin_email: str

    def microsoft(self, page, who: str) -> None:
        """`who`: "manager", "admin" (the admin's work account) or "blocked"."""

    def google(self, page, who: str) -> None:
        """`who`: "admin" (a verified Google account with the admin's email)."""


@dataclass
class FakePages:
    """The demo's own fake Google and Microsoft pages."""

    admin_email: str = ADMIN_EMAIL
    emails: ClassVar = {
        "manager": MANAGER,
        "admin": "ada@contoso.example",
        "blocked": "it@fabrikam.example",
    }
    tenants: ClassVar = {"manager": CONTOSO, "admin": CONTOSO, "blocked": FABRIKAM}

    def microsoft(self, page, who):
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.get_by_label("Email", exact=True).fill(self.emails[who])
        page.get_by_label("Account").select_option(self.tenants[who])
        page.get_by_role("button", name="Accept").click()

    def google(self, page, who):
        assert who == "admin"
        expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
        page.get_by_label("Email", exact=True).fill(self.admin_email)
        page.get_by_role("button", name="Continue").click()


@dataclass
class OidcPages:
    """oidc-provider's login form and consent page (tests/e2e/oidc/server.mjs)."""

    origin: str
    admin_email: str = "ann@example.com"  # the Google account "ann" has this email, verified
    logins: ClassVar = {"manager": "work-no-email", "admin": "work", "blocked": "needs-admin"}

    def microsoft(self, page, who):
        self._login(page, self.logins[who])

    def google(self, page, who):
        assert who == "admin"
        self._login(page, "ann")

    def _login(self, page, login):
        provider_login(page, self.origin, login)


@pytest.fixture
def fake_demo(live_server, tmp_path):
    demo = build(port=live_server.port, database=f"sqlite:///{tmp_path / 'demo.db'}", environ={})
    demo.app.testing = True  # exceptions reach the LiveServer's error log
    live_server.serve(demo.app)
    yield demo, live_server.url, FakePages()
    demo.close()


@pytest.fixture
def oidc_demo(app_server, oidc_server, tmp_path):
    players = OidcPages(oidc_server.origin)
    demo = build(
        port=app_server.port,
        database=f"sqlite:///{tmp_path / 'demo.db'}",
        providers=oidc_providers(oidc_server),
        admin_email=players.admin_email,
    )
    demo.app.testing = True
    app_server.serve(demo.app)
    yield demo, app_server.url, players
    demo.close()


@pytest.fixture(params=["fakes", "oidc-provider"])
def site(request):
    return request.getfixturevalue("fake_demo" if request.param == "fakes" else "oidc_demo")


def flash(page):
    return page.locator("p.flash")


def sign_in_with_password(page, base, email):
    page.goto(f"{base}/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(flash(page)).to_have_text(f"Signed in as {email} with a password.")


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    expect(flash(page)).to_have_text("You are signed out.")


def test_the_tour(page, steps, site):  # noqa: PLR0915 - one tour, step by step
    _, base, players = site
    admin = players.admin_email

    with steps("sign in with a password"):
        sign_in_with_password(page, base, admin)
        expect(page.locator("header .who")).to_have_text(admin)

    with steps("invite a manager"):
        page.get_by_label("Email", exact=True).fill(MANAGER)
        page.get_by_role("button", name="Invite").click()
        expect(flash(page)).to_have_text(f"Invitation created for {MANAGER}.")
        link = page.locator("#invite-link").get_attribute("href")
        assert link.startswith(f"{base}/invite/")

    with steps("accept the invitation with Microsoft"):
        page.goto(link)
        expect(page.get_by_text(f"This invitation is for {MANAGER}")).to_be_visible()
        page.get_by_role("button", name="Accept with Microsoft").click()
        players.microsoft(page, "manager")
        expect(flash(page)).to_have_text(
            "Welcome! Your account is ready; sign in with Microsoft from now on."
        )
        expect(page.locator("header .who")).to_have_text(MANAGER)

    with steps("the manager's only way to sign in cannot be unlinked"):
        page.get_by_role("link", name="Profile", exact=True).click()
        expect(page.locator("#method-microsoft")).to_contain_text("your only way to sign in")
        expect(page.get_by_role("button", name="Unlink Microsoft")).to_have_count(0)
        sign_out(page)

    with steps("link Microsoft from the profile"):
        sign_in_with_password(page, base, admin)
        page.get_by_role("link", name="Profile", exact=True).click()
        page.get_by_role("button", name="Link Microsoft").click()
        players.microsoft(page, "admin")
        expect(flash(page)).to_have_text(
            "Your Microsoft account is now linked. You can sign in with Microsoft from now on."
        )
        expect(page).to_have_url(f"{base}/profile")
        expect(page.locator("#method-microsoft")).to_contain_text("Linked")
        sign_out(page)

    with steps("sign in with Google by matching email"):
        page.get_by_role("button", name="Sign in with Google").click()
        players.google(page, "admin")
        expect(flash(page)).to_have_text("You are signed in with Google.")
        expect(page.locator("header .who")).to_have_text(admin)

    with steps("unlink Google"):
        page.get_by_role("link", name="Profile", exact=True).click()
        expect(page.locator("#method-google")).to_contain_text("Linked")
        page.get_by_role("button", name="Unlink Google").click()
        expect(flash(page)).to_have_text(
            "Google is unlinked. You can no longer sign in with Google."
        )
        expect(page.locator("#method-google")).to_contain_text("Not linked")
        sign_out(page)

    with steps("sign in with the linked Microsoft account"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        players.microsoft(page, "admin")
        expect(flash(page)).to_have_text("You are signed in with Microsoft.")
        expect(page.locator("header .who")).to_have_text(admin)
        sign_out(page)

    with steps("an organization that blocks external apps"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        players.microsoft(page, "blocked")
        expect(page.get_by_role("heading", name=BLOCKED)).to_be_visible()
        consent = page.locator("#consent-link")
        expect(consent).to_have_attribute("href", re.compile(r"/adminconsent\?client_id=."))


def test_the_admin_approves_the_app_on_the_fake_consent_page(page, steps, fake_demo):
    _, base, players = fake_demo
    page.goto(f"{base}/login")
    page.get_by_role("button", name="Sign in with Microsoft").click()
    players.microsoft(page, "blocked")
    expect(page.get_by_role("heading", name=BLOCKED)).to_be_visible()
    steps.shot("blocked")

    page.locator("#consent-link").click()
    expect(page.get_by_role("heading", name="Permissions requested")).to_be_visible()
    page.get_by_label("Organization").select_option(FABRIKAM)
    page.get_by_role("button", name="Accept for the organization").click()
    expect(flash(page)).to_have_text(  # Entra's redirect back: AdminConsentAnswered
        "An administrator of your organization has answered the request to approve this "
        "app. If they approved it, you can now sign in with Microsoft."
    )
    steps.shot("approved")

    page.get_by_role("button", name="Sign in with Microsoft").click()
    players.microsoft(page, "blocked")  # now past the block: an unknown identity
    expect(flash(page)).to_have_text(
        "This Microsoft account is not linked to any user here. Sign in another way "
        "first, then link Microsoft from your profile."
    )


def cancel(page):
    page.get_by_role("button", name="Cancel").click()


def submit(button):
    def play(page, change):
        change(page)
        page.get_by_role("button", name=button).click()

    return play


@pytest.mark.parametrize(
    ("provider", "play", "message"),
    [
        pytest.param(
            "Google",
            lambda page: submit("Continue")(
                page, lambda p: p.get_by_label("Google has verified this email").uncheck()
            ),
            "Your Google email address is not verified, so it can't be used to sign in here.",
            id="unverified-google-email",
        ),
        pytest.param("Google", cancel, "You cancelled signing in with Google.", id="google-cancel"),
        pytest.param(
            "Microsoft", cancel, "You cancelled signing in with Microsoft.", id="microsoft-cancel"
        ),
        pytest.param(
            "Microsoft",
            lambda page: submit("Accept")(
                page, lambda p: p.get_by_label("Account").select_option(CONSUMER_TENANT)
            ),
            "Personal Microsoft accounts can't sign in here. Please use your work or school "
            "account.",
            id="personal-microsoft-account",
        ),
    ],
)
def test_refusals_come_back_as_their_message(page, fake_demo, provider, play, message):
    """Each refusal lands back on the sign-in page with the error's end-user message."""
    _, base, _ = fake_demo
    page.goto(f"{base}/login")
    page.get_by_role("button", name=f"Sign in with {provider}").click()
    page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)
    play(page)
    expect(flash(page)).to_have_text(message)
    expect(page).to_have_url(f"{base}/login")
