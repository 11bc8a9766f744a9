"""Invitations and linking end to end: msal and Google against oidc-provider."""

from __future__ import annotations

import pytest

from bpart_auth import Auth, IdentityAlreadyLinked, LastSignInMethod, SQLStore
from bpart_auth.testing import CHEAP_FOR_TESTS

from .test_google_e2e import google
from .test_microsoft_e2e import microsoft

pytestmark = pytest.mark.e2e

SECRET = "an e2e secret key that is long enough!"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def auth(oidc_server, tmp_path):
    store = SQLStore(f"sqlite:///{tmp_path / 'auth.db'}", create_schema=True)
    yield Auth(
        store,
        secret_key=SECRET,
        providers=[google(oidc_server), microsoft(oidc_server)],
        password_hashing=CHEAP_FOR_TESTS,
    )
    store.close()


def finish(server, auth, start, login, **complete):
    return auth.complete(
        sealed_flow=start.sealed_flow, params=server.authorize(start.url, login=login), **complete
    )


def test_invite_accept_with_microsoft_then_sign_in_with_microsoft(oidc_server, auth):
    admin = auth.create_account(email="boss@example.com", password=PASSWORD)
    _, token = auth.invites.create("new.manager@example.com", invited_by=admin.id)
    start = auth.invites.begin_accept("microsoft", token, redirect_uri=oidc_server.redirect_uri)
    registered = finish(oidc_server, auth, start, "work")
    assert (registered.kind, registered.account.email) == ("registered", "new.manager@example.com")
    # Signed out; back another day.
    start = auth.begin_sign_in("microsoft", redirect_uri=oidc_server.redirect_uri)
    signed_in = finish(oidc_server, auth, start, "work")
    assert (signed_in.kind, signed_in.account.id) == ("signed_in", registered.account.id)
    with pytest.raises(LastSignInMethod):
        auth.unlink(registered.account.id, "microsoft")


def test_accept_with_password_link_microsoft_then_microsoft_and_google_sign_in(oidc_server, auth):
    _, token = auth.invites.create("ann@example.com")
    ann = auth.invites.accept_with_password(token, password=PASSWORD, name="Ann")

    start = auth.begin_link("microsoft", account_id=ann.id, redirect_uri=oidc_server.redirect_uri)
    linked = finish(oidc_server, auth, start, "work", signed_in_account_id=ann.id)
    assert linked.kind == "linked"
    assert "Microsoft account is now linked" in linked.message

    start = auth.begin_sign_in("microsoft", redirect_uri=oidc_server.redirect_uri)
    assert finish(oidc_server, auth, start, "work").account.id == ann.id
    # Google by the verified email, then remembered.
    start = auth.begin_sign_in("google", redirect_uri=oidc_server.redirect_uri)
    assert finish(oidc_server, auth, start, "ann").account.id == ann.id
    assert auth.sign_in_methods(ann.id).providers == {"microsoft", "google"}

    # The same Microsoft identity cannot be linked to another account.
    bob = auth.create_account(email="bob@example.com", password=PASSWORD)
    start = auth.begin_link("microsoft", account_id=bob.id, redirect_uri=oidc_server.redirect_uri)
    with pytest.raises(IdentityAlreadyLinked):
        finish(oidc_server, auth, start, "work", signed_in_account_id=bob.id)
    assert auth.sign_in_methods(bob.id).providers == frozenset()
