"""Chromium through oidc-provider's real login and consent pages, with bpart_auth at both
ends: `Auth.begin_sign_in` builds the authorization URL, a LiveServer callback calls
`Auth.complete`."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import flask
import pytest
from markupsafe import escape

from bpart_auth import (
    Auth,
    AuthError,
    Identity,
    MemoryStore,
)
from bpart_auth.testing import CHEAP_FOR_TESTS
from e2e.oidc_fixture import MICROSOFT_ACCOUNTS, WORK_TENANT

from ._harness import expect
from ._oidc_pages import oidc_providers

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

SECRET = "a browser-test secret key that is long enough"
PASSWORD = "correct horse battery staple"


def make_auth(server, store) -> Auth:
    return Auth(
        store,
        secret_key=SECRET,
        providers=oidc_providers(server),
        password_hashing=CHEAP_FOR_TESTS,
    )


def sign_in_app(auth: Auth, callback_url: str) -> flask.Flask:
    """The smallest app that signs in with a provider: keep the state, redirect, complete."""
    app = flask.Flask(__name__)
    app.testing = True
    app.secret_key = SECRET

    @app.get("/sign-in/<provider>")
    def begin(provider):
        start = auth.begin_sign_in(provider, redirect_uri=callback_url)
        flask.session["bpart_state"] = start.sealed_flow
        return flask.redirect(start.url)

    @app.get("/auth/callback")
    def callback():
        state = flask.session.pop("bpart_state", None)
        if state is None:
            return '<h1 id="error">No sign-in in progress</h1>', 400
        try:
            outcome = auth.complete(sealed_flow=state, params=flask.request.args.to_dict())
        except AuthError as error:
            return f'<h1 id="error" data-code="{error.code}">{escape(str(error))}</h1>', 400
        return (
            f'<h1 id="signed-in">Signed in as {escape(outcome.account.email)}</h1>'
            f'<p id="account">{escape(outcome.account.id)}</p><p id="kind">{outcome.kind}</p>'
        )

    return app


def at_callback(callback_url: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(callback_url)}\?")


@pytest.fixture
def store():
    return MemoryStore()


@pytest.mark.parametrize(("provider", "login"), [("google", "ann"), ("microsoft", "work")])
def test_chromium_signs_in_through_the_providers_login_and_consent_pages(
    page, steps, app_server, oidc_server, callback_url, store, provider, login
):
    auth = make_auth(oidc_server, store)
    ann = auth.create_account(email="ann@example.com", password=PASSWORD, name="Ann")
    if provider == "microsoft":  # Microsoft signs in a linked identity only (tid + oid)
        work = MICROSOFT_ACCOUNTS["work"]
        store.link_identity(
            account_id=ann.id,
            identity=Identity("microsoft", WORK_TENANT, work["oid"]),
            email=None,
            now=datetime.now(timezone.utc),
        )
    app_server.serve(sign_in_app(auth, callback_url))

    page.goto(f"{app_server.url}/sign-in/{provider}")
    expect(page).to_have_url(re.compile(rf"^{re.escape(oidc_server.origin)}/.+/interaction/"))
    with steps("login form filled in"):
        page.locator("input[name=login]").fill(login)
        page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()

    consent = page.get_by_role("button", name="Continue")
    expect(consent).to_be_visible()
    steps.shot("consent form")
    consent.click()

    page.wait_for_url(at_callback(callback_url))
    expect(page.locator("#signed-in")).to_have_text("Signed in as ann@example.com")
    steps.shot("signed in")
    expect(page.locator("#account")).to_have_text(ann.id)
    expect(page.locator("#kind")).to_have_text("signed_in")


def test_a_declined_sign_in_comes_back_to_the_callback_as_a_typed_error(
    page, app_server, oidc_server, callback_url, store
):
    auth = make_auth(oidc_server, store)
    app_server.serve(sign_in_app(auth, callback_url))

    page.goto(f"{app_server.url}/sign-in/google")
    page.locator("input[name=login]").fill("decline")  # an error login: access_denied
    page.locator("input[name=password]").fill("any password")
    page.get_by_role("button", name="Sign-in").click()

    page.wait_for_url(at_callback(callback_url))
    expect(page.locator("#error")).to_have_attribute("data-code", "consent_declined")
