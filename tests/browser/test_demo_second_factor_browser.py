"""Chromium walks the demo's second factors (issue 15's "Done when").

An authenticator app enrolled (the test computes codes from the secret the page shows),
the second step after a password (a wrong code refused, a right one signing in), a
recovery code working once; then a passkey registered on Chromium's virtual
authenticator (DevTools protocol `WebAuthn.addVirtualAuthenticator`), signing in alone,
and answering the second step after Google. The demo is served as `localhost`: WebAuthn
refuses an IP address as relying-party id.
"""

from __future__ import annotations

import re
import time

import pytest

from bpart_auth._demo import ADMIN_EMAIL, build

from ._harness import expect
from .test_demo_browser import flash, sign_in_with_password, sign_out

pyotp = pytest.importorskip("pyotp")

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WRONG_CODE = "That code didn't work. Check it and try again."


@pytest.fixture
def demo_site(live_server, tmp_path):
    demo = build(port=live_server.port, database=f"sqlite:///{tmp_path / 'demo.db'}", environ={})
    demo.app.testing = True  # exceptions reach the LiveServer's error log
    live_server.serve(demo.app)
    assert demo.base_url.startswith("http://localhost:")
    yield demo, demo.base_url
    demo.close()


def virtual_authenticator(page) -> tuple[object, str]:
    """A platform authenticator that verifies the user, on this page's browser context."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


def enter_code(page, code):
    page.get_by_label("Code from your authenticator app, or a recovery code").fill(code)
    page.get_by_role("button", name="Verify").click()


def password_first_factor(page, base):
    """Email and password: the demo asks for the second step instead of signing in."""
    page.goto(f"{base}/login")
    page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("back office demo password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base}/second-factor")
    expect(page.get_by_role("heading", name="One more step")).to_be_visible()


def test_an_authenticator_app_and_recovery_codes(page, steps, demo_site):
    _, base = demo_site
    with steps("enrol an authenticator app"):
        sign_in_with_password(page, base, ADMIN_EMAIL)
        page.goto(f"{base}/profile")
        page.get_by_role("link", name="Add an authenticator app").click()
        expect(page.locator("#totp-qr svg")).to_be_visible()
        secret = page.locator("#totp-secret").inner_text()
        totp = pyotp.TOTP(secret)
        page.get_by_label("Name").fill("Phone")
        page.get_by_label("The 6-digit code it shows now").fill(totp.now())
        page.get_by_role("button", name="Add the app").click()
        expect(flash(page)).to_have_text("Authenticator app \u201cPhone\u201d added.")
        codes = page.locator("#recovery-codes li").all_inner_texts()
        assert len(codes) == 10
        page.get_by_role("link", name="I have kept them: continue").click()
        expect(page.locator("#factors")).to_contain_text("Phone")
        expect(page.locator("#codes-left")).to_have_text("10 recovery codes left.")

    with steps("a password asks for the code; a wrong one is refused"):
        sign_out(page)
        password_first_factor(page, base)
        page.goto(f"{base}/")  # not signed in yet
        expect(page).to_have_url(f"{base}/login")
        password_first_factor(page, base)
        enter_code(page, "000000")
        expect(flash(page)).to_have_text(WRONG_CODE)
        expect(page).to_have_url(f"{base}/second-factor")

    with steps("the right code signs in"):
        # The enrolment spent this step's code: the next step's is within the drift window.
        enter_code(page, totp.at(time.time() + 30))
        expect(flash(page)).to_have_text(f"Signed in as {ADMIN_EMAIL} with your authenticator app.")
        expect(page.locator("header .who")).to_have_text(ADMIN_EMAIL)

    with steps("a recovery code works once"):
        sign_out(page)
        password_first_factor(page, base)
        enter_code(page, codes[0])
        expect(flash(page)).to_have_text(
            f"Signed in as {ADMIN_EMAIL} with a recovery code. 9 left: each works once."
        )
        sign_out(page)
        password_first_factor(page, base)
        enter_code(page, codes[0])
        expect(flash(page)).to_have_text(WRONG_CODE)
        enter_code(page, codes[1])
        expect(flash(page)).to_contain_text("with a recovery code. 8 left")


def test_a_passkey_alone_and_after_google(page, steps, demo_site):
    _, base = demo_site
    cdp, authenticator = virtual_authenticator(page)
    with steps("register a passkey"):
        sign_in_with_password(page, base, ADMIN_EMAIL)
        page.goto(f"{base}/profile")
        page.get_by_label("Name").fill("Laptop")
        page.get_by_role("button", name="Add a passkey").click()
        expect(flash(page)).to_have_text("Passkey \u201cLaptop\u201d added.")
        expect(page.locator("#recovery-codes li")).to_have_count(10)  # the first factor
        page.goto(f"{base}/profile")
        expect(page.locator("#factors")).to_contain_text("Laptop")
        credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
        assert [c["isResidentCredential"] for c in credentials["credentials"]] == [True]

    with steps("sign in with it, passwordless"):
        sign_out(page)
        page.get_by_role("button", name="Sign in with a passkey").click()
        expect(flash(page)).to_have_text(f"Signed in as {ADMIN_EMAIL} with a passkey.")
        expect(page.locator("header .who")).to_have_text(ADMIN_EMAIL)

    with steps("Google, then the passkey as the second step"):
        sign_out(page)
        page.get_by_role("button", name="Sign in with Google").click()
        expect(page.get_by_role("heading", name="Choose an account")).to_be_visible()
        expect(page.get_by_label("Email", exact=True)).to_have_value(ADMIN_EMAIL)
        page.get_by_role("button", name="Continue").click()
        expect(page).to_have_url(f"{base}/second-factor")
        page.goto(f"{base}/")
        expect(page).to_have_url(f"{base}/login")  # Google alone did not sign in
        page.get_by_role("button", name="Sign in with Google").click()
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="One more step")).to_be_visible()
        page.get_by_role("button", name="Use a passkey").click()
        expect(flash(page)).to_have_text(f"Signed in as {ADMIN_EMAIL} with a passkey.")
        page.goto(f"{base}/profile")
        expect(page.locator("#method-google .linked-account")).to_have_text(ADMIN_EMAIL)


def test_a_cancelled_passkey_says_so_on_the_page(page, demo_site):
    """No authenticator answers (the user cancels): the page says so, nothing is added."""
    demo, base = demo_site
    sign_in_with_password(page, base, ADMIN_EMAIL)
    page.goto(f"{base}/profile")
    page.evaluate(
        "() => { navigator.credentials.create = () => "
        "Promise.reject(new DOMException('The operation was cancelled.', 'NotAllowedError')); }"
    )
    page.get_by_role("button", name="Add a passkey").click()
    status = page.locator("#second-factors .passkey-status")
    expect(status).to_have_text("The passkey did not work: The operation was cancelled.")
    account = demo.store.find_account_by_email(ADMIN_EMAIL)
    assert demo.auth.second_factors.list(account.id) == []
    assert re.search("None yet", page.content())
