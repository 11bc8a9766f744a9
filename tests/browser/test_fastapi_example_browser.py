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

The walk itself is tests/browser/_example_walk.py, shared with the Flask example's test
(the two serve the same pages); this module serves the FastAPI example for it.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from pathlib import Path

import pytest

from bpart_auth.starlette import FORGED_REQUEST, SESSION_ENDED

from . import _example_walk as walk
from ._harness import LOOPBACK

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fastapi" / "fastapi_example.py"
# Hop-by-hop headers (RFC 9110 section 7.6.1) stay with each hop.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"}


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
    app = walk.load_example(EXAMPLE, "fastapi_example_under_test").create_app(
        example_auth, secret_key="a session key", https_only=False
    )
    app_server.serve(proxy_to(uvicorn_server(app)))
    return walk.Example(
        example_auth, app_server.url, oidc_server.origin, SESSION_ENDED, FORGED_REQUEST
    )


class TestFastApiExample(walk.ExampleWalk):
    """Every flow, invitations, two tabs and forged posts (_example_walk.py), on FastAPI."""
