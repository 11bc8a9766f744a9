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
UNVERIFIED = "Your Google email address is not verified, so it can't be used to sign in here."
NEW_PASSWORD = "a brand new demo passphrase"


class Players(Protocol):
    """Plays the user on the identity provider's pages, whichever they are."""

    admin_email: str

    def microsoft(self, page, who: str) -> None:
        """`who`: "manager", "admin" (the admin's work account) or "blocked"."""

    def google(self, page, who: str) -> None:
        """`who`: "admin" (a verified Google account with the admin's email)."""


@dataclass
class FakePages:
    """The demo's own fake Google and Microsoft pages, played with their defaults.

    The pages prefill the flow's `login_hint` (the invited address, the signed-in
    user), else the account last chosen on the page: docs/demo.md's tour needs no
    typing there, only Fabrikam chosen in step 6 and the box unticked in step 4.
    """

    admin_email: str = ADMIN_EMAIL
    can_untick_verified: ClassVar = True
    # Whom each step's defaults must be: the page is played as it comes.
    expected: ClassVar = {"manager": MANAGER, "admin": ADMIN_EMAIL}

    def microsoft(self, page, who):
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        if who == "blocked":
            page.get_by_label("Account").select_option(FABRIKAM)
        else:
            expect(page.get_by_label("Email", exact=True)).to_have_value(self.expected[who])
            expect(page.get_by_label("Account")).to_have_value(CONTOSO)
        page.get_by_role("button", name="Accept").click()

    def google(self, page, who):
        expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
        expect(page.get_by_label("Email", exact=True)).to_have_value(self.admin_email)
        if who == "unverified":
            page.get_by_label("Google has verified this email").uncheck()
        else:
            assert who == "admin"
        page.get_by_role("button", name="Continue").click()


@dataclass
class OidcPages:
    """oidc-provider's login form and consent page (tests/e2e/oidc/server.mjs)."""

    origin: str
    admin_email: str = "ann@example.com"  # the Google account "ann" has this email, verified
    can_untick_verified: ClassVar = False
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
    yield demo, demo.base_url, FakePages()  # http://localhost:<port>: the demo's own host
    demo.close()


@pytest.fixture
def oidc_demo(app_server, oidc_server, tmp_path):
    players = OidcPages(oidc_server.origin)
    demo = build(
        port=app_server.port,
        database=f"sqlite:///{tmp_path / 'demo.db'}",
        providers=oidc_providers(oidc_server),
        admin_email=players.admin_email,
        host="127.0.0.1",  # the callback oidc_server knows (the demo offers no passkeys then)
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
    """docs/demo.md's "What to click", steps 1 to 6, with the fake pages' defaults."""
    _, base, players = site
    admin = players.admin_email

    with steps("1 sign in with a password"):
        sign_in_with_password(page, base, admin)
        expect(page.locator("header .who")).to_have_text(admin)

    with steps("2 invite a manager"):
        page.get_by_label("Email", exact=True).fill(MANAGER)
        page.get_by_role("button", name="Invite").click()
        expect(flash(page)).to_have_text(f"Invitation created for {MANAGER}.")
        expect(page.locator("#invite-mail")).to_contain_text("stand-in for an email")
        link = page.locator("#invite-link").get_attribute("href")
        assert link.startswith(f"{base}/invite/")

    with steps("2 accept the invitation with Microsoft"):
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

    with steps("3 link Microsoft from the profile"):
        sign_in_with_password(page, base, admin)
        page.get_by_role("link", name="Profile", exact=True).click()
        page.get_by_role("button", name="Link Microsoft").click()
        players.microsoft(page, "admin")
        expect(flash(page)).to_have_text(
            "Your Microsoft account is now linked. You can sign in with Microsoft from now on."
        )
        expect(page).to_have_url(f"{base}/profile")
        linked = page.locator("#method-microsoft .linked-account")
        expect(linked).to_have_text(re.compile(r"\S"))  # which account: its email or id
        if isinstance(players, FakePages):
            expect(linked).to_have_text(admin)
        sign_out(page)

    if players.can_untick_verified:
        with steps("4 an unverified Google email never matches"):
            page.get_by_role("button", name="Sign in with Google").click()
            players.google(page, "unverified")
            expect(flash(page)).to_have_text(UNVERIFIED)
            expect(page).to_have_url(f"{base}/login")

    with steps("4 sign in with Google by matching email"):
        page.get_by_role("button", name="Sign in with Google").click()
        players.google(page, "admin")
        expect(flash(page)).to_have_text("You are signed in with Google.")
        expect(page.locator("header .who")).to_have_text(admin)

    with steps("5 unlink Google"):
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

    with steps("6 an organization that blocks external apps"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        players.microsoft(page, "blocked")
        expect(page.get_by_role("heading", name=BLOCKED)).to_be_visible()
        consent = page.locator("#consent-link")
        expect(consent).to_have_attribute("href", re.compile(r"/adminconsent\?client_id=."))
    if not isinstance(players, FakePages):
        return  # oidc-provider has no admin-consent page

    with steps("6 the administrator approves the app: news, not an error"):
        consent.click()
        expect(page.get_by_role("heading", name="Permissions requested")).to_be_visible()
        expect(page.get_by_label("Organization")).to_have_value(FABRIKAM)
        page.get_by_role("button", name="Accept for the organization").click()
        news = page.locator("p.flash.info")  # AdminConsentAnswered, flashed as "info"
        expect(news).to_have_text(
            "An administrator of your organization has answered the request to approve "
            "this app. If they approved it, you can now sign in with Microsoft."
        )
        expect(page.locator("p.flash.error")).to_have_count(0)

    with steps("6 signing in with Fabrikam again gets past the block"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        expect(page.get_by_label("Account")).to_have_value(FABRIKAM)  # remembered
        page.get_by_role("button", name="Accept").click()
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
            UNVERIFIED,
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


def test_forgot_password_then_reset(page, steps, fake_demo):
    demo, base, _ = fake_demo
    with steps("ask for a reset link"):
        page.goto(f"{base}/login")
        page.get_by_role("link", name="Forgot your password?").click()
        page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)
        page.get_by_role("button", name="Send the link").click()
        expect(page.locator("#reset-sent")).to_contain_text(ADMIN_EMAIL)
        expect(page.locator("#reset-mail")).to_contain_text("stand-in for an email")
        link = page.locator("#reset-link").get_attribute("href")
        assert link.startswith(f"{base}/password/reset/")

    with steps("a password the policy refuses: back on the reset page"):
        page.goto(link)
        page.get_by_label("New password").fill("short")
        page.get_by_role("button", name="Set the password").click()
        expect(page.locator("p.flash.error")).to_contain_text("15")
        expect(page).to_have_url(link)

    with steps("set a new password"):
        page.get_by_label("New password").fill(NEW_PASSWORD)
        page.get_by_role("button", name="Set the password").click()
        expect(flash(page)).to_have_text(
            "Your new password is set, and you are signed in. Other sessions have ended."
        )
        expect(page.locator("header .who")).to_have_text(ADMIN_EMAIL)
        sign_out(page)

    with steps("the link works once; the new password signs in"):
        page.goto(link)
        page.get_by_label("New password").fill("yet another demo passphrase")
        page.get_by_role("button", name="Set the password").click()
        expect(page.locator("p.flash.error")).to_be_visible()
        assert demo.auth.passwords.sign_in(ADMIN_EMAIL, NEW_PASSWORD).email == ADMIN_EMAIL

    with steps("an unknown address: the same sentence, no link"):
        page.goto(f"{base}/password/forgot")
        page.get_by_label("Email", exact=True).fill("nobody@example.com")
        page.get_by_role("button", name="Send the link").click()
        expect(page.locator("#reset-sent")).to_contain_text("nobody@example.com")
        expect(page.locator("#reset-link")).to_have_count(0)


def test_change_password_keeps_this_session_and_ends_the_others(page, new_page, fake_demo):
    demo, base, _ = fake_demo
    elsewhere = new_page("elsewhere")
    sign_in_with_password(elsewhere, base, ADMIN_EMAIL)
    sign_in_with_password(page, base, ADMIN_EMAIL)
    page.get_by_role("link", name="Profile", exact=True).click()

    form = page.locator("#change-password")
    form.get_by_label("Current password").fill("not the password at all")
    form.get_by_label("New password").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Change password").click()
    expect(page.locator("p.flash.error")).to_have_text(
        "The email address or password is incorrect."
    )
    expect(page).to_have_url(f"{base}/profile")  # the form's page, not another

    form.get_by_label("Current password").fill(ADMIN_PASSWORD)
    form.get_by_label("New password").fill(NEW_PASSWORD)
    form.get_by_role("button", name="Change password").click()
    expect(flash(page)).to_have_text("Your password is changed. Your other sessions have ended.")
    page.reload()
    expect(page.locator("header .who")).to_have_text(ADMIN_EMAIL)  # this session goes on

    elsewhere.reload()
    expect(flash(elsewhere)).to_have_text("Your session has ended. Please sign in again.")
    expect(elsewhere).to_have_url(f"{base}/login")
    assert demo.auth.passwords.sign_in(ADMIN_EMAIL, NEW_PASSWORD).email == ADMIN_EMAIL


def test_resend_and_revoke_an_invitation(page, steps, fake_demo):
    _, base, _ = fake_demo
    sign_in_with_password(page, base, ADMIN_EMAIL)
    page.get_by_label("Email", exact=True).fill(MANAGER)
    page.get_by_role("button", name="Invite").click()
    first = page.locator("#invite-link").get_attribute("href")
    pending = page.locator("#pending-invites")
    expect(pending).to_contain_text(MANAGER)

    with steps("resend: a new link, the old one dies"):
        pending.get_by_role("button", name="Resend").click()
        expect(flash(page)).to_have_text(
            f"A new link for {MANAGER} is ready; the old one no longer works."
        )
        second = page.locator("#invite-link").get_attribute("href")
        assert second != first
        page.goto(first)
        expect(page.locator("p.flash.error")).to_be_visible()
        page.goto(second)
        expect(page.get_by_text(f"This invitation is for {MANAGER}")).to_be_visible()

    with steps("revoke: the link stops working"):
        page.goto(f"{base}/")
        pending.get_by_role("button", name="Revoke").click()
        expect(flash(page)).to_have_text(f"The invitation for {MANAGER} is revoked.")
        expect(page.locator("#pending-invites")).to_have_count(0)
        expect(page.locator("#invite-link")).to_have_count(0)
        page.goto(second)
        expect(page.locator("p.flash.error")).to_have_text(
            "This invitation is no longer valid. Please ask for a new invitation."
        )


def test_refusals_land_on_the_page_the_user_began_on(page, steps, fake_demo):
    """Invitation errors on the invitation page, home-page form errors on home."""
    _, base, players = fake_demo
    sign_in_with_password(page, base, ADMIN_EMAIL)
    with steps("inviting an address that has an account: back on home"):
        page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)
        page.get_by_role("button", name="Invite").click()
        expect(page.locator("p.flash.error")).to_be_visible()
        expect(page).to_have_url(f"{base}/")
    page.get_by_label("Email", exact=True).fill(MANAGER)
    page.get_by_role("button", name="Invite").click()
    link = page.locator("#invite-link").get_attribute("href")
    page.get_by_role("link", name="Profile", exact=True).click()
    page.get_by_role("button", name="Link Microsoft").click()
    players.microsoft(page, "admin")  # the admin's Microsoft account is now linked
    sign_out(page)

    with steps("a password the policy refuses: back on the invitation"):
        page.goto(link)
        page.get_by_label("Password").fill("short")
        page.get_by_role("button", name="Create my account").click()
        expect(page.locator("p.flash.error")).to_contain_text("15")
        expect(page).to_have_url(link)

    with steps("a Microsoft account linked to someone else: back on the invitation"):
        page.get_by_role("button", name="Accept with Microsoft").click()
        page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)  # the admin's account
        page.get_by_role("button", name="Accept").click()
        expect(page.locator("p.flash.error")).to_have_text(
            "This Microsoft account is already linked to another user here. Sign in with "
            "Microsoft to reach that user, or choose a different Microsoft account."
        )
        expect(page).to_have_url(link)
        expect(page.get_by_text(f"This invitation is for {MANAGER}")).to_be_visible()


def test_two_tabs_each_finish_their_own_flow(page, fake_demo):
    """Google begun in one tab, Microsoft in another, finished in the other order."""
    _, base, _ = fake_demo
    sign_in_with_password(page, base, ADMIN_EMAIL)
    other = page.context.new_page()  # the same browser, the same session cookie
    for tab in (page, other):
        tab.goto(f"{base}/profile")
    page.get_by_role("button", name="Link Google").click()
    expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
    other.get_by_role("button", name="Link Microsoft").click()
    expect(other.get_by_role("heading", name="Sign in")).to_be_visible()

    other.get_by_role("button", name="Accept").click()
    expect(flash(other)).to_have_text(
        "Your Microsoft account is now linked. You can sign in with Microsoft from now on."
    )
    page.get_by_role("button", name="Continue").click()
    expect(flash(page)).to_have_text(
        "Your Google account is now linked. You can sign in with Google from now on."
    )
    for tab in (page, other):
        tab.goto(f"{base}/profile")
        expect(tab.locator("#method-google .linked-account")).to_have_text(ADMIN_EMAIL)
        expect(tab.locator("#method-microsoft .linked-account")).to_have_text(ADMIN_EMAIL)
    other.close()


def test_a_forged_cross_origin_post_is_refused(page, fake_demo):
    """A page on another port of localhost (same site: the cookie goes along) posts."""
    demo, base, _ = fake_demo
    sign_in_with_password(page, base, ADMIN_EMAIL)
    evil = "http://localhost:18081/prize"
    page.route(
        evil,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<form method="post" action="{base}/invites">'
            '<input name="email" value="mallory@example.com">'
            "<button>Claim your prize</button></form>",
        ),
    )
    page.goto(evil)
    with page.expect_response(f"{base}/invites") as answer:
        page.get_by_role("button", name="Claim your prize").click()
    assert answer.value.status == 403
    expect(page.locator("body")).to_have_text("This request did not come from this site.")
    assert [invite.email for invite in demo.auth.invites.pending()] == []
    page.goto(f"{base}/")
    expect(page.locator("header .who")).to_have_text(ADMIN_EMAIL)  # still signed in
