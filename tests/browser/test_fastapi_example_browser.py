"""Chromium through examples/fastapi/fastapi_example.py, against oidc-provider's real pages.

The example's own tests (examples/fastapi) drive it with Starlette's test client and the
in-process fakes; this one checks what only a browser shows: that its forms pass the
adapter's cross-origin check as Chromium sends them and a page on another origin cannot
post, that Starlette's session cookie survives the providers' redirects (SameSite=Lax),
that two tabs sharing that cookie each finish their own flow, and that every flow ends
on the right page.

The app runs where it would in production, in uvicorn (its own event loop, in a thread
of this process), on 127.0.0.1 and an ephemeral port. The `app_server` LiveServer, whose
`/auth/callback` oidc-provider knows, passes each request on to it unchanged (`Host`,
cookies, `Origin` and `Sec-Fetch-*` included), so the app sees the origin the browser
uses.
"""

from __future__ import annotations

import html
import http.client
import importlib.util
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from bpart_auth.starlette import FORGED_REQUEST, SESSION_ENDED

from ._harness import LOOPBACK, expect
from ._oidc_pages import provider_login

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi" / "fastapi_example.py"
PASSWORD = "correct horse battery staple"
ANN = "ann@example.com"  # oidc-provider's Google account "ann" has this email, verified
CAROL = "carol@other.example"  # its Google account "other-hd"
# Hop-by-hop headers (RFC 9110 section 7.6.1) stay with each hop.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"}


def load_example():
    spec = importlib.util.spec_from_file_location("fastapi_example_under_test", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def uvicorn_server():
    """`serve(asgi_app)` runs it in uvicorn on 127.0.0.1:<port>; returns the port."""
    import uvicorn  # noqa: PLC0415 - an `examples` extra

    running = []

    def serve(app) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, 0))
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True
        )
        thread.start()
        running.append((server, thread, sock))
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return sock.getsockname()[1]

    yield serve
    for server, thread, sock in running:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()


def proxy_to(port: int):
    """A WSGI app passing every request on to 127.0.0.1:`port` as it came."""

    def app(environ, start_response):
        path = environ.get("RAW_URI") or environ["PATH_INFO"]
        if environ.get("QUERY_STRING") and "?" not in path:
            path += "?" + environ["QUERY_STRING"]
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_") and key[5:].replace("_", "-").lower() not in HOP_BY_HOP
        }
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers[key.replace("_", "-").title()] = environ[key]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        try:
            connection.request(environ["REQUEST_METHOD"], path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        finally:
            connection.close()
        start_response(f"{response.status} {response.reason}", kept)
        return [content]

    return app


@pytest.fixture
def example(app_server, oidc_server, example_auth, uvicorn_server):
    auth = example_auth
    app = load_example().create_app(auth, secret_key="a session key", https_only=False)
    app_server.serve(proxy_to(uvicorn_server(app)))
    return auth, app_server.url, oidc_server.origin


def flash(page):
    return page.locator("p.flash")


def sign_in_with_password(page, base, email=ANN, password=PASSWORD):
    page.goto(f"{base}/")
    page.get_by_placeholder("Email").fill(email)
    page.get_by_placeholder("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text(f"Signed in as {email}.")).to_be_visible()


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


def test_every_flow_of_the_fastapi_example(page, steps, example):
    auth, base, origin = example
    ann = auth.create_account(email=ANN, password=PASSWORD)

    with steps("wrong password, then password sign-in"):
        page.goto(f"{base}/")
        page.get_by_placeholder("Email").fill(ANN)
        page.get_by_placeholder("Password").fill("not the password")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(flash(page)).to_have_text("The email address or password is incorrect.")
        sign_in_with_password(page, base)
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
        expect(flash(page)).to_have_text(SESSION_ENDED)
        expect(page.get_by_role("button", name="Sign in", exact=True)).to_be_visible()

    with steps("an organization that requires admin consent"):
        page.get_by_role("button", name="Sign in with Microsoft").click()
        provider_login(page, origin, "needs-admin")
        expect(page.get_by_role("heading")).to_have_text("Your organization must approve this app")
        expect(page.locator("a[href*='/adminconsent?client_id=']")).to_be_visible()


def test_invitations_of_the_fastapi_example(page, steps, example):
    auth, base, origin = example
    auth.create_account(email=ANN, password=PASSWORD)
    sign_in_with_password(page, base)

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
        sign_in_with_password(page, base)  # back as the admin
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


def test_two_tabs_each_finish_their_own_flow(page, steps, example):
    auth, base, origin = example
    ann = auth.create_account(email=ANN, password=PASSWORD)
    sign_in_with_password(page, base)
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


# 127.0.0.1 on another port is the same site (the SameSite=Lax cookie goes along, and
# Chromium says Sec-Fetch-Site: same-site); localhost is another site (cross-site).
@pytest.mark.parametrize("attacker_host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize(
    ("action", "fields"), [("/invites", {"email": "evil@example.com"}), ("/logout", {})]
)
def test_a_forged_cross_origin_post_is_refused(
    page, steps, example, live_server, attacker_host, action, fields
):
    auth, base, _ = example
    auth.create_account(email=ANN, password=PASSWORD)
    sign_in_with_password(page, base)
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
        expect(page.locator("body")).to_have_text(FORGED_REQUEST)

    with steps("nothing changed"):
        assert auth.invites.pending() == []
        page.goto(f"{base}/")
        expect(page.get_by_text(f"Signed in as {ANN}.")).to_be_visible()
