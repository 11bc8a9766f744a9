"""Chromium through examples/django/django_example.py, against oidc-provider's real pages.

The example's own tests use Django's test client and the in-process fakes; this one
checks, in a real browser, that Django's CSRF middleware accepts the example's forms as
Chromium posts them and refuses a form another origin posts, that its session survives
the providers' redirects, that two tabs each finish their own flow, and that every flow
ends on the right page.

The second-factor walk serves the example as http://localhost:<port> (the same server:
WebAuthn refuses an IP address as RP id), so Chromium's virtual authenticator (DevTools
`WebAuthn.addVirtualAuthenticator`) registers a passkey and signs in with it, as the
second step and alone.

Django's settings are once per process, so the example is imported under the name its
own tests use (`django_example`), whichever runs first, and its settings are applied
with `override_settings` for the test.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from ._example_walk import ANN, PASSWORD, attacker_site, sign_in_with_password
from ._harness import expect
from ._oidc_pages import provider_login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EXAMPLE_DIR = Path(__file__).resolve().parents[2] / "examples" / "django"
MANAGER = "manager@contoso.example"
DJANGO_KEY = "a Django key for the browser test"


@pytest.fixture
def example(app_server, oidc_server, example_auth, monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    import django_example  # noqa: PLC0415 - found on the path just added
    from django.core.wsgi import get_wsgi_application  # noqa: PLC0415
    from django.test import override_settings  # noqa: PLC0415

    auth = example_auth
    django_example.configure(auth, secret_key=DJANGO_KEY)
    assert sys.modules["django_example"] is django_example
    with override_settings(**django_example.settings_for(auth, secret_key=DJANGO_KEY)):
        app_server.serve(get_wsgi_application())
        yield auth, app_server.url, oidc_server.origin


@pytest.fixture
def mfa_example(app_server, tmp_path, monkeypatch):
    """The example with second factors, served as http://localhost:<port> (no providers)."""
    pyotp = pytest.importorskip("pyotp")  # the `mfa` extra
    monkeypatch.syspath_prepend(str(EXAMPLE_DIR))
    import django_example  # noqa: PLC0415 - found on the path just added
    from django.core.wsgi import get_wsgi_application  # noqa: PLC0415
    from django.test import override_settings  # noqa: PLC0415

    from bpart_auth import Auth, SQLStore  # noqa: PLC0415
    from bpart_auth.passkeys import RelyingParty  # noqa: PLC0415
    from bpart_auth.services.second_factors import SecondFactorPolicy  # noqa: PLC0415
    from bpart_auth.testing import CHEAP_FOR_TESTS  # noqa: PLC0415

    base = app_server.url.replace("127.0.0.1", "localhost")
    store = SQLStore(f"sqlite:///{tmp_path / 'example.db'}", create_schema=True)
    auth = Auth(
        store,
        secret_key="a browser-test secret key that is long enough",
        redirect_uri=f"{base}/auth/callback",  # the app's origin: where forms come from
        password_hashing=CHEAP_FOR_TESTS,
        second_factor=SecondFactorPolicy(
            relying_party=RelyingParty("localhost", "Back office", [base])
        ),
    )
    auth.create_account(email=ANN, password=PASSWORD)
    django_example.configure(auth, secret_key=DJANGO_KEY)
    with override_settings(**django_example.settings_for(auth, secret_key=DJANGO_KEY)):
        app_server.serve(get_wsgi_application())
        yield base, pyotp.TOTP
    store.close()


def second_step(page, code):
    page.get_by_label("Code from your authenticator app").fill(code)
    page.get_by_role("button", name="Verify").click()


def password_first(page, base):
    """The first factor: the browser is sent to the second step."""
    page.goto(f"{base}/login")
    page.locator("input[name=email]").fill(ANN)
    page.locator("input[name=password]").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{base}/second-factor")
    expect(page.get_by_text(f"Signing in as {ANN}.")).to_be_visible()


def signed_in(page):
    expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()


def sign_in(page, base):
    sign_in_with_password(page, f"{base}/login")


def sign_out(page, base):
    page.goto(f"{base}/")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{base}/login")


def test_every_flow_of_the_django_example(page, steps, example):
    auth, base, origin = example
    auth.create_account(email=ANN, password=PASSWORD)

    with steps("password sign-in"):
        sign_in(page, base)

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
        expect(page.get_by_role("heading", name="Your organization must approve")).to_be_visible()
        expect(page.locator("a[href*='/adminconsent?client_id=']")).to_be_visible()


def test_two_tabs_each_finish_their_own_flow(page, steps, example, _evidence):  # noqa: PT019 - it records the second tab
    auth, base, origin = example
    ann = auth.create_account(email=ANN, password=PASSWORD)
    sign_in(page, base)
    other_tab = page.context.new_page()  # the same browser: the same session cookie
    _evidence.watch("other tab", other_tab)

    with steps("this tab begins linking Google"):
        page.goto(f"{base}/profile")
        page.get_by_role("button", name="Link Google").click()
        expect(page).to_have_url(re.compile(rf"^{re.escape(origin)}/.+/interaction/"))

    with steps("the other tab links Microsoft, start to finish"):
        other_tab.goto(f"{base}/profile")
        other_tab.get_by_role("button", name="Link Microsoft").click()
        provider_login(other_tab, origin, "work")
        expect(other_tab).to_have_url(f"{base}/profile")
        expect(other_tab.get_by_text("Your Microsoft account is now linked.")).to_be_visible()

    with steps("this tab finishes its Google flow"):
        provider_login(page, origin, "ann")
        expect(page).to_have_url(f"{base}/profile")
        expect(page.get_by_text("Your Google account is now linked.")).to_be_visible()
        expect(page.get_by_role("button", name="Unlink Google")).to_be_visible()
        expect(page.get_by_role("button", name="Unlink Microsoft")).to_be_visible()
    assert auth.sign_in_methods(ann.id).providers == {"google", "microsoft"}


def test_a_form_posted_from_another_origin_is_refused(page, steps, example, live_server):
    auth, base, _ = example
    auth.create_account(email=ANN, password=PASSWORD)
    sign_in(page, base)

    # Another origin (port), the same site: the session cookie goes along.
    forged_form = attacker_site(
        f"{base}/admin/invites", email="mallory@example.com", csrfmiddlewaretoken="guessed"
    )

    with steps("a page elsewhere posts the invitation form"):
        page.goto(f"{live_server.serve(forged_form).url}/")
        expect(page.get_by_text("CSRF verification failed")).to_be_visible()
    assert not auth.invites.pending()  # nothing was invited
    page.goto(f"{base}/")
    expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()  # and nothing ended


def test_an_authenticator_app_and_recovery_codes(page, steps, mfa_example):
    base, totp = mfa_example

    with steps("enrol an authenticator app"):
        sign_in(page, base)
        page.goto(f"{base}/profile")
        page.get_by_role("link", name="Add an authenticator app").click()
        expect(page.locator("svg")).to_be_visible()  # the QR code, inline
        secret = page.locator("#secret").inner_text()
        page.get_by_placeholder("Name (e.g. Phone)").fill("Phone")
        page.locator("input[name=code]").fill(totp(secret).now())
        page.get_by_role("button", name="Confirm").click()
        expect(page.get_by_text("Phone added.")).to_be_visible()
        codes = page.locator("#recovery-codes li").all_inner_texts()
        assert len(codes) == 10
        page.get_by_role("link", name="Done").click()
        expect(page.get_by_text("Phone (authenticator app)")).to_be_visible()
        sign_out(page, base)

    with steps("a password sign-in asks for the code; a wrong one is refused"):
        password_first(page, base)
        second_step(page, "000000")
        expect(page.get_by_text("That code didn't work.")).to_be_visible()
        expect(page).to_have_url(f"{base}/second-factor")
        page.goto(f"{base}/")
        expect(page).to_have_url(f"{base}/login")  # not signed in

    with steps("the right code signs in"):
        password_first(page, base)
        second_step(page, totp(secret).at(time.time() + 30))  # enrolment used this step's
        signed_in(page)
        sign_out(page, base)

    with steps("a recovery code works once"):
        password_first(page, base)
        second_step(page, codes[0])
        signed_in(page)
        sign_out(page, base)
        password_first(page, base)
        second_step(page, codes[0])
        expect(page.get_by_text("That code didn't work.")).to_be_visible()


def test_a_passkey_as_second_step_and_alone(page, steps, mfa_example):
    base, _ = mfa_example
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    authenticator = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
    }
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": authenticator})

    with steps("add a passkey on the profile: the first factor, so recovery codes"):
        sign_in(page, base)
        page.goto(f"{base}/profile")
        page.get_by_placeholder("Passkey name").fill("Laptop")
        page.get_by_role("button", name="Add a passkey").click()
        expect(page.get_by_text("Laptop added.")).to_be_visible()
        assert len(page.locator("#recovery-codes li").all_inner_texts()) == 10
        page.get_by_role("link", name="Done").click()
        expect(page.get_by_text("Laptop (passkey)")).to_be_visible()
        sign_out(page, base)

    with steps("the passkey as the second step"):
        password_first(page, base)
        page.get_by_role("button", name="Use a passkey").click()
        signed_in(page)
        sign_out(page, base)

    with steps("the passkey alone, from the login page"):
        page.get_by_role("button", name="Sign in with a passkey").click()
        signed_in(page)
