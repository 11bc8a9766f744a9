"""Chromium through examples/flask/flask_example.py, against oidc-provider's real pages.

The example's own tests (examples/flask) drive it with Flask's test client and the
in-process fakes; this one checks what only a browser shows: that its forms pass the
adapter's cross-origin check as Chromium sends them and a page on another origin cannot
post, that the session cookie survives the providers' redirects (SameSite=Lax), that two
tabs sharing that cookie each finish their own flow, and that every flow ends on the
right page.

The walk itself is tests/browser/_example_walk.py, shared with the FastAPI example's test
(the two serve the same pages); this module serves the Flask example for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bpart_auth.flask import FORGED_REQUEST, SESSION_ENDED

from . import _example_walk as walk

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask" / "flask_example.py"


@pytest.fixture
def example(app_server, oidc_server, example_auth):
    app = walk.load_example(EXAMPLE, "flask_example_under_test").create_app(
        example_auth, secret_key="a Flask key", secure_cookies=False
    )
    app.testing = True
    app_server.serve(app)
    return walk.Example(
        example_auth, app_server.url, oidc_server.origin, SESSION_ENDED, FORGED_REQUEST
    )


class TestFlaskExample(walk.ExampleWalk):
    """Every flow, invitations, two tabs and forged posts (_example_walk.py), on Flask."""
