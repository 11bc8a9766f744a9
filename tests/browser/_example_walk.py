"""Chromium's walk through an example app, shared by the examples' browser tests.

The Flask and FastAPI examples serve the same pages (same forms, texts and notices) on
different frameworks, so one walk checks both: each test module serves its example and
hands the walk an `Example`; the walk signs in, links, invites, opens two tabs and
forges posts against oidc-provider's real pages, as a user would; it enrols an
authenticator app and a passkey (Chromium's virtual authenticator) and signs in with
them. The Django example's pages differ (a login page, a profile page, an invitation
page); its test uses only the helpers that fit (`sign_in_with_password`, `attacker_site`).

A test module serves its example in an `example` fixture and collects the walk by
subclassing `ExampleWalk` (`class TestFlaskExample(ExampleWalk): ...`).
"""

from __future__ import annotations

import html
import importlib.util
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pyotp
import pytest

from bpart_auth import Auth

from ._harness import expect
from ._oidc_pages import provider_login

PASSWORD = "correct horse battery staple"
ANN = "ann@example.com"  # oidc-provider's Google account "ann" has this email, verified
CAROL = "carol@other.example"  # its Google account "other-hd"
WRONG_CODE = "That code didn't work. Check it and try again."


@dataclass(frozen=True, slots=True)
class Example:
    """An example app being served, and what its adapter says."""

    auth: Auth
    base: str  # the app's URL, as the browser uses it
    origin: str  # oidc-provider's
    session_ended: str  # the adapter's SESSION_ENDED notice
    forged_request: str  # the adapter's FORGED_REQUEST body


def load_example(path: Path, name: str):
    """The example at `path`, imported afresh as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flash(page):
    return page.locator("p.flash")


def sign_in_with_password(page, login_url, email=ANN, password=PASSWORD):
    """Sign in on the page at `login_url`; the home page then names the account."""
    page.goto(login_url)
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(f"Signed in as {email}.")).to_be_visible()


def first_factor(page, base, email=ANN, password=PASSWORD):
    """Sign in with a password on an account with a second factor: the second step opens."""
    page.goto(f"{base}/")
    page.get_by_placeholder("Email").fill(email)
    page.get_by_placeholder("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading")).to_have_text("One more step")


def virtual_authenticator(page):
    """A platform authenticator in Chromium (DevTools' WebAuthn domain) that verifies the user."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
    }
    return cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]


def invite(page, email):
    """Invite `email` from the home page, sign out, open the invitation link."""
    page.get_by_placeholder("Email").fill(email)
    page.get_by_role("button", name="Invite a manager").click()
    expect(flash(page)).to_contain_text(f"Invitation for {email}: ")
    link = re.search(r"https?://\S+/invite/\S+", flash(page).inner_text()).group(0)
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()
    page.goto(link)
    expect(page.get_by_text(f"Invitation for {email}")).to_be_visible()


def attacker_site(target: str, **fields: str):
    """A WSGI app whose page posts a form to `target` as soon as it loads."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in fields.items()
    )
    page = (
        "<!doctype html><title>You won a prize</title>"
        f'<form method="post" action="{html.escape(target)}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    ).encode()

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [page]

    return app


class ExampleWalk:
    """The walk's tests. A test module subclasses it (`class TestFlaskExample(ExampleWalk)`)
    and gives an `example` fixture: the example served on `app_server`, as an `Example`.
    """

    def test_every_flow(self, page, steps, example: Example):
        """Password, linking, Google by email, Microsoft, a session ended, admin consent."""
        auth, base, origin = example.auth, example.base, example.origin
        ann = auth.create_account(email=ANN, password=PASSWORD)

        with steps("wrong password, then password sign-in"):
            page.goto(f"{base}/")
            page.get_by_placeholder("Email").fill(ANN)
            page.get_by_placeholder("Password").fill("not the password")
            page.get_by_role("button", name="Sign in", exact=True).click()
            expect(flash(page)).to_have_text("The email address or password is incorrect.")
            sign_in_with_password(page, f"{base}/")
            expect(flash(page)).to_have_text("You are signed in.")

        with steps("link Microsoft"):
            page.get_by_role("button", name="Link Microsoft").click()
            provider_login(page, origin, "work")
            expect(flash(page)).to_have_text(
                "Your Microsoft account is now linked. You can sign in with Microsoft from now on."
            )
            expect(page.get_by_role("button", name="Unlink Microsoft")).to_be_visible()

        with steps("sign out"):
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()

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

        with steps("the password changed elsewhere: the session ends"):
            auth.passwords.change(ann.id, current=PASSWORD, new="another long passphrase")
            page.reload()
            expect(flash(page)).to_have_text(example.session_ended)
            expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()

        with steps("an organization that requires admin consent"):
            page.get_by_role("button", name="Sign in with Microsoft").click()
            provider_login(page, origin, "needs-admin")
            expect(page.get_by_role("heading")).to_have_text(
                "Your organization must approve this app"
            )
            expect(page.locator("a[href*='/adminconsent?client_id=']")).to_be_visible()

    def test_invitations(self, page, steps, example: Example):
        """Invitations accepted with Microsoft, with a password (one refused first), with Google."""
        auth, base, origin = example.auth, example.base, example.origin
        auth.create_account(email=ANN, password=PASSWORD)
        sign_in_with_password(page, f"{base}/")

        with steps("invite a manager, accepted with Microsoft"):
            invite(page, "manager@contoso.example")
            page.get_by_role("button", name="Accept with Microsoft").click()
            provider_login(page, origin, "work-no-email")
            expect(flash(page)).to_have_text(
                "Welcome! Your account is ready; sign in with Microsoft from now on."
            )
            expect(page.get_by_text("Signed in as manager@contoso.example.")).to_be_visible()
            page.get_by_role("button", name="Sign out").click()

        with steps("invite a manager, accepted with a password"):
            sign_in_with_password(page, f"{base}/")  # back as the admin
            invite(page, "dave@example.com")
            page.get_by_placeholder("New password").fill("short")
            page.get_by_role("button", name="Accept", exact=True).click()
            expect(flash(page)).to_contain_text("at least")  # back on the invitation page
            expect(page.get_by_text("Invitation for dave@example.com")).to_be_visible()
            page.get_by_placeholder("Name").fill("Dave")
            page.get_by_placeholder("New password").fill(PASSWORD)
            page.get_by_role("button", name="Accept", exact=True).click()
            expect(flash(page)).to_have_text("Welcome! Your account is ready.")
            expect(page.get_by_text("Signed in as dave@example.com.")).to_be_visible()

        with steps("invite a manager, accepted with Google"):
            invite(page, CAROL)  # Dave invites: any signed-in account may
            page.get_by_role("button", name="Accept with Google").click()
            provider_login(page, origin, "other-hd")
            expect(page.get_by_text(f"Signed in as {CAROL}.")).to_be_visible()
            expect(page.get_by_role("button", name="Unlink Google")).to_be_visible()
            page.get_by_role("button", name="Sign out").click()

    def test_two_tabs_each_finish_their_own_flow(self, page, steps, example: Example):
        """Two tabs of one browser (one session cookie) each begin a link, then finish it."""
        auth, base, origin = example.auth, example.base, example.origin
        ann = auth.create_account(email=ANN, password=PASSWORD)
        sign_in_with_password(page, f"{base}/")
        second_tab = page.context.new_page()  # the same browser: one session cookie

        with steps("tab 1 begins linking Google, tab 2 linking Microsoft"):
            page.get_by_role("button", name="Link Google").click()
            expect(page).to_have_url(re.compile(rf"^{re.escape(origin)}/"))
            second_tab.goto(f"{base}/")
            second_tab.get_by_role("button", name="Link Microsoft").click()
            expect(second_tab).to_have_url(re.compile(rf"^{re.escape(origin)}/"))

        with steps("tab 1 finishes Google"):
            provider_login(page, origin, "ann")
            expect(flash(page)).to_have_text(
                "Your Google account is now linked. You can sign in with Google from now on."
            )

        with steps("tab 2 finishes Microsoft"):
            provider_login(second_tab, origin, "work")
            expect(flash(second_tab)).to_have_text(
                "Your Microsoft account is now linked. You can sign in with Microsoft from now on."
            )
            expect(second_tab.get_by_text(f"Signed in as {ANN}.")).to_be_visible()
            expect(second_tab.get_by_role("button", name="Unlink Google")).to_be_visible()
            expect(second_tab.get_by_role("button", name="Unlink Microsoft")).to_be_visible()
        assert set(auth.sign_in_methods(ann.id).providers) == {"google", "microsoft"}

    # 127.0.0.1 on another port is the same site (the SameSite=Lax cookie goes along, and
    # Chromium says Sec-Fetch-Site: same-site); localhost is another site (cross-site).
    @pytest.mark.parametrize("attacker_host", ["127.0.0.1", "localhost"])
    @pytest.mark.parametrize(
        ("action", "fields"), [("/invites", {"email": "evil@example.com"}), ("/logout", {})]
    )
    def test_a_forged_cross_origin_post_is_refused(
        self, page, steps, example: Example, live_server, attacker_host, action, fields
    ):
        """A page on `attacker_host` posts the form to `action`: refused, nothing changes."""
        auth, base = example.auth, example.base
        auth.create_account(email=ANN, password=PASSWORD)
        sign_in_with_password(page, f"{base}/")
        live_server.serve(attacker_site(f"{base}{action}", **fields))
        attacker = live_server.url.replace("127.0.0.1", attacker_host)

        with steps("the attacker's page posts to the example"):
            with page.expect_response(f"{base}{action}") as forged:
                page.goto(f"{attacker}/")
            assert forged.value.status == 403
            sent = forged.value.request.all_headers()
            assert forged.value.request.method == "POST"
            if attacker_host == "127.0.0.1":  # the cookie went along: only the guard stops it
                assert sent["sec-fetch-site"] == "same-site"
                assert "session=" in sent.get("cookie", "")
            else:
                assert sent["sec-fetch-site"] == "cross-site"
            expect(page.locator("body")).to_have_text(example.forged_request)

        with steps("nothing changed"):
            assert auth.invites.pending() == []
            page.goto(f"{base}/")
            expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()

    def test_an_authenticator_app_as_the_second_step(self, page, steps, example: Example):
        """Enrolled from the home page, then asked: a wrong code, the right one, a recovery code."""
        auth, base = example.auth, example.base
        auth.create_account(email=ANN, password=PASSWORD)
        sign_in_with_password(page, f"{base}/")

        with steps("enrol an authenticator app"):
            page.get_by_role("link", name="Add an authenticator app").click()
            expect(page.locator("svg")).to_be_visible()  # the QR code, inline
            totp = pyotp.TOTP(page.locator("code.secret").inner_text())
            page.get_by_placeholder("Name (Phone)").fill("Phone")
            page.get_by_placeholder("Code from the app").fill(totp.now())
            page.get_by_role("button", name="Add the app").click()
            expect(flash(page)).to_have_text("Authenticator app added.")
            expect(page.locator("ul.recovery-codes li")).to_have_count(10)
            recovery_codes = page.locator("ul.recovery-codes li").all_inner_texts()
            page.get_by_role("link", name="Continue").click()
            expect(page.get_by_text("Phone (authenticator app)")).to_be_visible()
            expect(page.get_by_text("Recovery codes left: 10.")).to_be_visible()

        with steps("sign out; the password alone leads to the second step"):
            page.get_by_role("button", name="Sign out").click()
            first_factor(page, base)

        with steps("a wrong code is refused"):
            page.get_by_placeholder("Code").fill("000000")
            page.get_by_role("button", name="Verify").click()
            expect(flash(page)).to_have_text(WRONG_CODE)
            expect(page.get_by_role("heading")).to_have_text("One more step")

        with steps("the right code signs in"):
            # The enrolment used this 30 s step's code; the next step's is within the drift.
            page.get_by_placeholder("Code").fill(totp.at(time.time() + 30))
            page.get_by_role("button", name="Verify").click()
            expect(flash(page)).to_have_text("You are signed in.")
            expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()

        with steps("sign out; a recovery code signs in, once"):
            page.get_by_role("button", name="Sign out").click()
            first_factor(page, base)
            page.get_by_placeholder("Code").fill(recovery_codes[0])
            page.get_by_role("button", name="Verify").click()
            expect(page.get_by_text("Recovery codes left: 9.")).to_be_visible()

    def test_a_passkey_as_the_second_step(self, page, steps, example: Example):
        """Added with Chromium's virtual authenticator, used as the second step, removed.

        The app is opened as `localhost`: the same server, but a host name, which WebAuthn
        needs as RP id (example_auth's passkeys are for it).
        """
        auth, base = example.auth, example.base.replace("127.0.0.1", "localhost")
        ann = auth.create_account(email=ANN, password=PASSWORD)
        sign_in_with_password(page, f"{base}/")
        virtual_authenticator(page)

        with steps("add a passkey: the first factor, so recovery codes too"):
            page.get_by_placeholder("Passkey name").fill("Laptop")
            page.get_by_role("button", name="Add a passkey").click()
            expect(flash(page)).to_have_text("Passkey added.")
            expect(page.locator("ul.recovery-codes li")).to_have_count(10)
            page.get_by_role("link", name="Continue").click()
            expect(page.get_by_text("Laptop (passkey)")).to_be_visible()

        with steps("sign out; the passkey is the second step"):
            page.get_by_role("button", name="Sign out").click()
            first_factor(page, base)
            page.get_by_role("button", name="Use a passkey").click()
            expect(flash(page)).to_have_text("You are signed in.")
            expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()

        with steps("remove it: the password alone signs in again"):
            page.locator("li", has_text="Laptop (passkey)").get_by_role("button").click()
            expect(flash(page)).to_have_text("Laptop removed.")
            assert auth.second_factors.list(ann.id) == []
            page.get_by_role("button", name="Sign out").click()
            sign_in_with_password(page, f"{base}/")
