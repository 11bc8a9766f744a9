"""`bpart-auth demo`: it starts, serves the back office, and picks real or fake providers.

Every flow is clicked through in Chromium by tests/browser/test_demo_browser.py; these
tests cover what a browser does not see.
"""

from __future__ import annotations

import html
import http.server
import io
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from bpart_auth import ConfigurationError, GoogleProvider, MicrosoftProvider, _cli
from bpart_auth._demo import ADMIN_EMAIL, ADMIN_PASSWORD, build
from bpart_auth._demo.app import NO_SECOND_STEP
from bpart_auth._demo.fakes import FABRIKAM, DemoFakes
from bpart_auth.testing import SoftAuthenticator

pyotp = pytest.importorskip("pyotp")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    demo = build(port=8000, database=f"sqlite:///{tmp_path / 'demo.db'}", environ={})
    yield demo
    demo.close()


def test_the_console_script_serves_the_demo_on_loopback(tmp_path):
    port = free_port()
    script = Path(sys.executable).with_name("bpart-auth")
    process = subprocess.Popen(
        [script, "demo", "--port", str(port), "--database", f"sqlite:///{tmp_path / 'd.db'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.endswith("_CLIENT_ID")},
    )
    try:
        banner = process.stdout.readline()
        assert f"on http://localhost:{port}" in banner, banner
        assert "google: fake, microsoft: fake" in banner
        page = requests.get(f"http://127.0.0.1:{port}/login", timeout=10)  # sent to localhost
        assert page.status_code == 200
        assert page.url == f"http://localhost:{port}/login"
        assert f"{ADMIN_EMAIL} / {ADMIN_PASSWORD}" in page.text
        assert page.headers["Cache-Control"] == "no-store"
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_a_busy_port_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = io.StringIO()
        status = _cli.main(
            ["demo", "--port", str(port), "--database", f"sqlite:///{tmp_path / 'd.db'}"], out=out
        )
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.getvalue()


def test_the_admin_is_seeded_once_and_signs_in(tmp_path):
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    for _ in range(2):  # a kept database: the second start finds the admin there
        demo = build(database=url, environ={})
        try:
            account = demo.auth.passwords.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
            assert account.email == ADMIN_EMAIL
        finally:
            demo.close()


def test_fakes_by_default(demo):
    assert demo.modes == {"google": "fake", "microsoft": "fake"}
    assert demo.fakes is not None


def test_real_client_ids_switch_each_provider_to_the_real_one(tmp_path):
    environ = {
        "GOOGLE_CLIENT_ID": "id.apps.googleusercontent.com",
        "GOOGLE_CLIENT_SECRET": "google secret",
    }
    demo = build(database=f"sqlite:///{tmp_path / 'a.db'}", environ=environ)
    try:
        assert demo.modes == {"google": "real", "microsoft": "fake"}
        google = demo.providers["google"]
        assert isinstance(google, GoogleProvider)
        assert google._oidc.metadata_url.startswith("https://accounts.google.com/")
    finally:
        demo.close()
    environ |= {
        "MICROSOFT_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
        "MICROSOFT_CLIENT_SECRET": "microsoft secret",
        "MICROSOFT_TENANT": "contoso.onmicrosoft.com",
    }
    demo = build(database=f"sqlite:///{tmp_path / 'b.db'}", environ=environ)
    try:
        assert demo.modes == {"google": "real", "microsoft": "real"}
        assert demo.fakes is None
        microsoft = demo.providers["microsoft"]
        assert isinstance(microsoft, MicrosoftProvider)
        assert microsoft.tenant == "contoso.onmicrosoft.com"
    finally:
        demo.close()


@pytest.mark.parametrize("name", ["GOOGLE", "MICROSOFT"])
def test_a_client_id_without_its_secret_is_refused(tmp_path, name):
    with pytest.raises(ConfigurationError) as caught:
        build(database=f"sqlite:///{tmp_path / 'c.db'}", environ={f"{name}_CLIENT_ID": "x"})
    assert f"{name}_CLIENT_SECRET is not" in caught.value.detail


def test_fake_urls_are_mapped_to_the_demos_pages_and_nothing_else():
    fakes = DemoFakes("http://127.0.0.1:8000")
    google = fakes.google.authorization_endpoint
    microsoft = fakes.microsoft.authorization_endpoint
    assert fakes.browser_url(f"{google}?state=s") == (
        "http://127.0.0.1:8000/fake/google/authorize?state=s"
    )
    assert fakes.browser_url(f"{microsoft}?state=s") == (
        "http://127.0.0.1:8000/fake/microsoft/authorize?state=s"
    )
    consent = f"{fakes.microsoft.authority_host}/organizations/adminconsent?client_id=c"
    assert fakes.browser_url(consent) == (
        "http://127.0.0.1:8000/fake/microsoft/organizations/adminconsent?client_id=c"
    )
    for other in ("https://accounts.google.com/o/oauth2/v2/auth?x=1", f"{google}.evil.test/"):
        assert fakes.browser_url(other) == other
    assert fakes.browser_url(f"{microsoft}?state=s", login_hint="ann+x@example.com") == (
        "http://127.0.0.1:8000/fake/microsoft/authorize?state=s&login_hint=ann%2Bx@example.com"
    )


def test_the_fakes_let_other_requests_through_while_they_run(demo):
    """A real Google beside a fake Microsoft: only the fakes' hosts are answered in process."""
    metadata = demo.fakes.google.metadata_url
    assert requests.get(metadata, timeout=5).json()["issuer"] == "https://accounts.google.com"
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        response = requests.get(f"http://127.0.0.1:{port}/no-such-file", timeout=5)
        assert response.status_code == 404  # a real server answered, not the mock
    finally:
        thread.join(timeout=5)
        server.server_close()


def test_a_request_for_another_host_is_sent_to_the_canonical_one(demo):
    assert demo.base_url == "http://localhost:8000"  # a passkey's RP id must be a name
    client = demo.app.test_client()
    response = client.get("/login?next=1", base_url="http://127.0.0.1:8000")
    assert response.status_code == 302
    assert response.location == "http://localhost:8000/login?next=1"
    assert client.get("/login", base_url=demo.base_url).status_code == 200


def test_the_fake_pages_only_send_codes_to_the_registered_callback(demo):
    client = demo.app.test_client()
    start = demo.auth.begin_sign_in("google", redirect_uri="http://127.0.0.1:9999/steal")
    page = demo.fakes.browser_url(start.url)
    assert client.get(page, base_url=demo.base_url).status_code == 400
    start = demo.auth.begin_sign_in("google", redirect_uri=f"{demo.base_url}/auth/callback")
    response = client.get(demo.fakes.browser_url(start.url), base_url=demo.base_url)
    assert response.status_code == 200
    assert re.search(r"Choose an account", response.get_data(as_text=True))


@pytest.mark.parametrize(
    "headers",
    [{"Sec-Fetch-Site": "cross-site"}, {"Origin": "http://evil.example"}, {}],
    ids=["cross-site", "foreign-origin", "no-header"],
)
def test_a_forged_sign_in_post_is_refused(demo, headers):
    client = demo.app.test_client()
    form = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    response = client.post("/login", data=form, headers=headers, base_url=demo.base_url)
    assert response.status_code == 403
    with client.session_transaction(base_url=demo.base_url) as session:
        assert "account" not in session
    same = client.post(
        "/login", data=form, headers={"Origin": demo.base_url}, base_url=demo.base_url
    )
    assert (same.status_code, same.location) == (302, "/")


def test_an_unknown_invitation_link_says_so_on_the_sign_in_page(demo):
    client = demo.app.test_client()
    response = client.get("/invite/not-a-token", base_url=demo.base_url, follow_redirects=True)
    assert response.request.path == "/login"
    assert "This invitation link is not valid." in response.get_data(as_text=True)


def signed_in_client(demo):
    client = demo.app.test_client()
    form = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    same = {"Origin": demo.base_url}
    response = client.post("/login", data=form, headers=same, base_url=demo.base_url)
    assert response.status_code == 302
    return client, same


def email_field(page: str) -> str:
    return re.search(r'name="email" type="email" value="([^"]*)"', page).group(1)


def test_the_fake_microsoft_page_suggests_the_hint_else_the_account_last_chosen(demo):
    client = demo.app.test_client()
    start = demo.auth.begin_sign_in("microsoft", redirect_uri=f"{demo.base_url}/auth/callback")
    page = demo.fakes.browser_url(start.url)
    first = client.get(page, base_url=demo.base_url).get_data(as_text=True)
    assert email_field(first) == "manager@contoso.example"  # nothing known: the sample
    hinted = demo.fakes.browser_url(start.url, login_hint="ada@contoso.example")
    shown = client.get(hinted, base_url=demo.base_url).get_data(as_text=True)
    assert email_field(shown) == "ada@contoso.example"
    chosen = {"email": "it@fabrikam.example", "tenant": FABRIKAM, "action": "accept"}
    client.post(page, data=chosen, headers={"Origin": demo.base_url}, base_url=demo.base_url)
    again = client.get(page, base_url=demo.base_url).get_data(as_text=True)
    assert email_field(again) == "it@fabrikam.example"
    assert f'<option value="{FABRIKAM}" selected>' in again


def test_pages_keep_their_urls_on_the_site(demo):
    """Referrer-Policy same-origin: a same-origin POST names its page; no other site."""
    response = demo.app.test_client().get("/login", base_url=demo.base_url)
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_a_refused_form_goes_back_to_the_page_that_posted_it(demo):
    client, same = signed_in_client(demo)
    headers = same | {"Referer": f"{demo.base_url}/?tab=invites"}
    response = client.post(
        "/invites", data={"email": ADMIN_EMAIL}, headers=headers, base_url=demo.base_url
    )
    assert (response.status_code, response.location) == (302, "/?tab=invites")
    elsewhere = same | {"Referer": "http://evil.example/profile"}
    response = client.post(
        "/invites", data={"email": ADMIN_EMAIL}, headers=elsewhere, base_url=demo.base_url
    )
    assert response.location == "/"  # not another origin's page: home


def test_a_forged_post_by_a_signed_in_browser_changes_nothing(demo):
    client, _ = signed_in_client(demo)
    forged = {"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:9"}
    response = client.post(
        "/invites", data={"email": "mallory@example.com"}, headers=forged, base_url=demo.base_url
    )
    assert response.status_code == 403
    assert demo.auth.invites.pending() == []


@pytest.mark.parametrize("path", ["/", "/profile"], ids=["home", "profile"])
def test_signed_in_pages_send_a_visitor_to_sign_in(demo, path):
    response = demo.app.test_client().get(path, base_url=demo.base_url)
    assert (response.status_code, response.location) == (302, "/login")


# Second factors


def admin_client(demo):
    """Signed in as the admin, its welcome read (flashes pile up until a page shows them)."""
    client, same = signed_in_client(demo)
    client.get("/", base_url=demo.base_url)
    return client, same


def flashes(response) -> list[str]:
    found = re.findall(
        r'<p class="flash \w+" role="\w+">([^<]*)</p>', response.get_data(as_text=True)
    )
    return [html.unescape(message) for message in found]


def recovery_codes(response) -> list[str]:
    codes = re.search(
        r'<ul class="codes" id="recovery-codes">(.*?)</ul>',
        response.get_data(as_text=True),
        re.DOTALL,
    )
    return re.findall(r"<li>([^<]+)</li>", codes.group(1))


def add_totp(demo, client, same, name="Phone"):
    """Add an authenticator app on the profile: its secret, and the page after the code."""
    page = client.get("/second-factor/enrol", base_url=demo.base_url).get_data(as_text=True)
    assert '<div class="qr" id="totp-qr"><svg' in page  # the QR code, inline
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)</code>', page).group(1)
    form = {"code": pyotp.TOTP(secret).now(), "name": name}
    response = client.post("/second-factor/enrol", data=form, headers=same, base_url=demo.base_url)
    return secret, response


def password_sign_in(demo, client, same):
    form = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    return client.post("/login", data=form, headers=same, base_url=demo.base_url)


def post(demo, client, same, path, form=None, *, page=None):
    """A same-origin form post from `page` (the Referer), followed to where it lands."""
    headers = same | ({"Referer": f"{demo.base_url}{page}"} if page else {})
    return client.post(
        path, data=form or {}, headers=headers, base_url=demo.base_url, follow_redirects=True
    )


def test_an_authenticator_app_then_the_second_step_with_codes(demo):
    client, same = admin_client(demo)
    secret, added = add_totp(demo, client, same)
    assert added.status_code == 200
    assert flashes(added) == ["Authenticator app \u201cPhone\u201d added."]
    codes = recovery_codes(added)  # the first factor: ten codes, shown once
    assert len(codes) == 10
    profile = client.get("/profile", base_url=demo.base_url).get_data(as_text=True)
    assert re.search(r"<td>Phone</td>\s*<td>Authenticator app</td>", profile)
    assert "10 recovery codes left." in profile
    assert codes[0] not in profile

    client.post("/logout", headers=same, base_url=demo.base_url)
    response = password_sign_in(demo, client, same)
    assert (response.status_code, response.location) == (302, "/second-factor")
    assert client.get("/", base_url=demo.base_url).location == "/login"  # not signed in yet
    step = client.get("/second-factor", base_url=demo.base_url)
    assert f"Signing in as <strong>{ADMIN_EMAIL}</strong>" in step.get_data(as_text=True)
    wrong = post(demo, client, same, "/second-factor", {"code": "000000"}, page="/second-factor")
    assert wrong.request.path == "/second-factor"
    assert flashes(wrong) == ["That code didn't work. Check it and try again."]
    later = pyotp.TOTP(secret).at(time.time() + 30)  # the enrolment's code is spent
    right = post(demo, client, same, "/second-factor", {"code": later})
    assert right.request.path == "/"
    assert flashes(right) == [f"Signed in as {ADMIN_EMAIL} with your authenticator app."]

    client.post("/logout", headers=same, base_url=demo.base_url)
    password_sign_in(demo, client, same)
    used = post(demo, client, same, "/second-factor", {"code": codes[0]}, page="/second-factor")
    assert flashes(used) == [
        f"Signed in as {ADMIN_EMAIL} with a recovery code. 9 left: each works once."
    ]
    client.post("/logout", headers=same, base_url=demo.base_url)
    password_sign_in(demo, client, same)
    again = post(demo, client, same, "/second-factor", {"code": codes[0]}, page="/second-factor")
    assert again.request.path == "/second-factor"
    assert flashes(again) == ["That code didn't work. Check it and try again."]


def test_regenerated_recovery_codes_replace_the_old_ones(demo):
    client, same = admin_client(demo)
    _, added = add_totp(demo, client, same)
    old = recovery_codes(added)
    page = post(demo, client, same, "/profile/recovery-codes", page="/profile")
    new = recovery_codes(page)
    assert len(new) == 10
    assert not set(new) & set(old)
    assert flashes(page) == ["New recovery codes are made: the old ones no longer work."]
    client.post("/logout", headers=same, base_url=demo.base_url)
    password_sign_in(demo, client, same)
    refused = post(demo, client, same, "/second-factor", {"code": old[1]}, page="/second-factor")
    assert refused.request.path == "/second-factor"
    assert post(demo, client, same, "/second-factor", {"code": new[1]}).request.path == "/"


def test_a_removed_factor_no_longer_asks_for_a_second_step(demo):
    client, same = admin_client(demo)
    add_totp(demo, client, same, name="Old phone")
    (factor,) = demo.auth.second_factors.list(demo.store.find_account_by_email(ADMIN_EMAIL).id)
    removed = post(demo, client, same, f"/profile/factors/{factor.id}/remove", page="/profile")
    assert removed.request.path == "/profile"
    assert flashes(removed) == ["Authenticator app \u201cOld phone\u201d is removed."]
    assert "None yet" in removed.get_data(as_text=True)
    client.post("/logout", headers=same, base_url=demo.base_url)
    assert password_sign_in(demo, client, same).location == "/"


def test_the_second_step_page_needs_a_pending_sign_in(demo):
    client = demo.app.test_client()
    response = client.get("/second-factor", base_url=demo.base_url, follow_redirects=True)
    assert response.request.path == "/login"
    assert flashes(response) == [NO_SECOND_STEP]
    client, _ = signed_in_client(demo)
    assert client.get("/second-factor", base_url=demo.base_url).location == "/"


@pytest.mark.parametrize("path", ["/second-factor/enrol", "/profile"])
def test_enrolment_needs_a_signed_in_account(demo, path):
    response = demo.app.test_client().get(path, base_url=demo.base_url, follow_redirects=True)
    assert response.request.path == "/login"


def passkey(demo, client, same, options_path, path, answer, *, page, name=None):
    """The page's script, as a test: fetch the options, answer them, post the answer."""
    options = client.post(options_path, headers=same, base_url=demo.base_url)
    assert options.mimetype == "application/json"
    form = {"credential": json.dumps(answer(options.get_data(as_text=True)))}
    if name:
        form["name"] = name
    return post(demo, client, same, path, form, page=page)


def test_a_passkey_signs_in_alone_and_as_the_second_step(demo):
    phone = SoftAuthenticator(origin=demo.base_url, rp_id="localhost")
    client, same = admin_client(demo)
    added = passkey(
        demo,
        client,
        same,
        "/profile/passkeys/options",
        "/profile/passkeys",
        phone.create,
        page="/profile",
        name="Phone",
    )
    assert flashes(added) == ["Passkey \u201cPhone\u201d added."]
    assert len(recovery_codes(added)) == 10
    client.post("/logout", headers=same, base_url=demo.base_url)

    login = client.get("/login", base_url=demo.base_url).get_data(as_text=True)
    assert "Sign in with a passkey" in login
    alone = passkey(demo, client, same, "/passkey/options", "/passkey", phone.get, page="/login")
    assert alone.request.path == "/"
    assert flashes(alone) == [f"Signed in as {ADMIN_EMAIL} with a passkey."]
    client.post("/logout", headers=same, base_url=demo.base_url)

    assert password_sign_in(demo, client, same).location == "/second-factor"
    step = client.get("/second-factor", base_url=demo.base_url).get_data(as_text=True)
    assert "Use a passkey" in step
    second = passkey(
        demo, client, same, "/passkey/options", "/passkey", phone.get, page="/second-factor"
    )
    assert second.request.path == "/"
    profile = client.get("/profile", base_url=demo.base_url).get_data(as_text=True)
    row = re.search(
        r"<td>Phone</td>\s*<td>Passkey</td>\s*<td>[^<]+</td>\s*<td>([^<]+)</td>", profile
    )
    assert row.group(1).endswith(" UTC")  # last used: just now, not "never"


def test_a_passkey_of_another_site_is_refused_on_the_page(demo):
    other = SoftAuthenticator(origin="http://localhost:9000", rp_id="localhost")
    client, same = admin_client(demo)
    refused = passkey(
        demo,
        client,
        same,
        "/profile/passkeys/options",
        "/profile/passkeys",
        other.create,
        page="/profile",
    )
    assert refused.request.path == "/profile"
    assert flashes(refused) == [
        "That passkey didn't work. Try again, or use another way to sign in."
    ]
    assert demo.auth.second_factors.list(demo.store.find_account_by_email(ADMIN_EMAIL).id) == []


def test_a_google_sign_in_asks_for_the_second_step(demo):
    client, same = admin_client(demo)
    add_totp(demo, client, same)
    client.post("/logout", headers=same, base_url=demo.base_url)
    fake_page = client.post("/login/google", headers=same, base_url=demo.base_url).location
    form = {"email": ADMIN_EMAIL, "email_verified": "yes", "action": "continue"}
    callback = client.post(fake_page, data=form, headers=same, base_url=demo.base_url).location
    response = client.get(callback, base_url=demo.base_url)
    assert (response.status_code, response.location) == (302, "/second-factor")
    assert client.get("/", base_url=demo.base_url).location == "/login"


def test_served_on_an_ip_address_the_demo_offers_no_passkeys(tmp_path):
    demo = build(
        port=8000, database=f"sqlite:///{tmp_path / 'ip.db'}", environ={}, host="127.0.0.1"
    )
    try:
        assert demo.base_url == "http://127.0.0.1:8000"
        client = demo.app.test_client()
        login = client.get("/login", base_url=demo.base_url).get_data(as_text=True)
        assert "Sign in with a passkey" not in login
        assert "data-passkey" not in login
        client, _ = signed_in_client(demo)
        profile = client.get("/profile", base_url=demo.base_url).get_data(as_text=True)
        assert "Add an authenticator app" in profile
        assert "Add a passkey" not in profile
    finally:
        demo.close()
