"""The browser harness itself: LiveServer, a form driven by Chromium, and the evidence a
failing browser test leaves behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from pathlib import Path

import flask
import pytest
from markupsafe import escape

from ._harness import ARTIFACTS_ENV, Evidence, LiveServer, Steps, expect

pytestmark = pytest.mark.browser

TESTS_DIR = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fetch(url: str) -> tuple[int, str]:
    """GET without proxies from the environment: the status and the body."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


def hello_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"hello from {environ['PATH_INFO']}".encode()]


# --- LiveServer, without a browser ------------------------------------------------------


def test_live_server_knows_its_url_before_the_app_and_serves_it_on_loopback():
    with LiveServer() as server:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.port > 0
        assert server._server.socket.getsockname() == ("127.0.0.1", server.port)
        assert fetch(server.url + "/") == (503, "LiveServer: no app is being served\n")

        server.serve(hello_app)
        assert fetch(server.url + "/a/path") == (200, "hello from /a/path")
        assert list(server.requests) == ["GET / -> 503", "GET /a/path -> 200"]

        server.clear()
        assert fetch(server.url + "/") == (503, "LiveServer: no app is being served\n")
    with pytest.raises(urllib.error.URLError):
        fetch(server.url + "/")
    with pytest.raises(RuntimeError, match="stopped"):
        server.serve(hello_app)


def test_live_server_records_exceptions_that_escape_the_app():
    def broken(environ, start_response):
        raise RuntimeError("the app broke")

    with LiveServer() as server:
        server.serve(broken)
        status, _ = fetch(server.url + "/explode")
        assert status == 500
        assert len(server.errors) == 1
        assert server.errors[0].startswith("GET /explode\n")
        assert "RuntimeError: the app broke" in server.errors[0]


# --- Chromium and a form ----------------------------------------------------------------


def greeting_app() -> flask.Flask:
    app = flask.Flask(__name__)
    app.testing = True  # exceptions reach LiveServer.errors instead of a bare 500

    @app.get("/")
    def form():
        return """<!DOCTYPE html><title>Greeter</title>
            <form method="post" action="/greet">
              <label>Name <input name="name" required></label>
              <label>Colour <select name="colour"><option>red</option><option>green</option>
              </select></label>
              <button>Greet</button>
            </form>"""

    @app.post("/greet")
    def greet():
        name, colour = flask.request.form["name"], flask.request.form["colour"]
        return (
            f"<!DOCTYPE html><title>Greeted</title><h1>Hello, {escape(name)}!</h1>"
            f'<p id="colour">{escape(colour)}</p>'
        )

    return app


class _FlakyPage:
    """A page whose screenshot fails the way Chromium's sometimes does under load."""

    url = "http://127.0.0.1:1/busy"

    def screenshot(self, **_options):
        raise RuntimeError("Protocol error (Page.captureScreenshot): Unable to capture screenshot")


def test_a_screenshot_that_fails_never_fails_the_test_and_is_reported(tmp_path):
    steps = Steps(_FlakyPage())
    with steps("signed in"):
        pass  # the block succeeded: the failing screenshot must not turn it into a failure
    evidence = Evidence()
    evidence.steps = steps
    written = evidence.write(tmp_path / "evidence", test="t")
    assert written == ["report.txt"]
    report = (tmp_path / "evidence" / "report.txt").read_text()
    assert (
        "step 01-signed-in.png: 'signed in' at http://127.0.0.1:1/busy could not capture" in report
    )


def test_chromium_fills_and_submits_a_form(page, steps, live_server):
    live_server.serve(greeting_app())
    page.goto(f"{live_server.url}/")
    expect(page).to_have_title("Greeter")
    steps.shot("empty form")

    with steps("form filled in"):
        page.get_by_label("Name").fill("Ann <Admin>")
        page.get_by_label("Colour").select_option("green")
    page.get_by_role("button", name="Greet").click()

    expect(page.get_by_role("heading")).to_have_text("Hello, Ann <Admin>!")
    expect(page.locator("#colour")).to_have_text("green")
    assert page.url == f"{live_server.url}/greet"
    app_requests = [line for line in live_server.requests if "favicon" not in line]
    assert app_requests == ["GET / -> 200", "POST /greet -> 200"]
    assert [shot.name for shot in steps.shots] == ["empty form", "form filled in"]
    assert all(shot.png.startswith(PNG_SIGNATURE) for shot in steps.shots)


def test_only_loopback_resolves(page, live_server):
    live_server.serve(hello_app)
    page.goto(f"{live_server.url}/")
    expect(page.locator("body")).to_have_text("hello from /")
    with pytest.raises(Exception, match="ERR_NAME_NOT_RESOLVED"):
        page.goto("https://example.com/")


# --- screenshots on failure ---------------------------------------------------------------

INNER_TESTS = """
HOME = b"<!DOCTYPE html><title>Inner</title><h1>Hello</h1><input name=who>"


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/html")])
    return [HOME]


def test_fails_after_three_steps(page, steps, live_server):
    live_server.serve(app)
    page.goto(live_server.url + "/")
    steps.shot("home page")
    with steps("typed a name"):
        page.fill("input", "Ann")
    with steps("expects a goodbye"):
        assert page.inner_text("h1") == "Goodbye"


def test_passes_with_steps(page, steps, live_server):
    live_server.serve(app)
    page.goto(live_server.url + "/")
    steps.shot("home page")
    assert page.inner_text("h1") == "Hello"
"""


def test_a_failing_browser_test_leaves_its_steps_and_page_behind(browser, tmp_path):
    """Runs two browser tests in a child pytest (this conftest loaded as a plugin)."""
    (tmp_path / "test_inner_browser.py").write_text(textwrap.dedent(INNER_TESTS))
    artifacts = tmp_path / "artifacts"
    failed = artifacts / "test_inner_browser.test_fails_after_three_steps"
    passed = artifacts / "test_inner_browser.test_passes_with_steps"
    passed.mkdir(parents=True)
    (passed / "01-stale.png").write_bytes(b"from an earlier failing run")

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS_DIR), env.get("PYTHONPATH")]))
    env[ARTIFACTS_ENV] = str(artifacts)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-p", "browser.conftest", "-p", "no:cacheprovider"),
            *("-q", "--rootdir", str(tmp_path), "test_inner_browser.py"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "1 failed, 1 passed" in output
    assert "browser artifacts" in output
    assert f"{failed}/" in output

    names = sorted(path.name for path in failed.iterdir())
    assert names == [
        "01-home-page.png",
        "02-typed-a-name.png",
        "03-expects-a-goodbye-failed.png",
        "04-final.png",
        "final.html",
        "report.txt",
    ]
    for name in names:
        if name.endswith(".png"):
            assert (failed / name).read_bytes().startswith(PNG_SIGNATURE), name
    assert "<h1>Hello</h1>" in (failed / "final.html").read_text()
    report = (failed / "report.txt").read_text()
    assert "test_inner_browser.py::test_fails_after_three_steps" in report
    assert "final [page] url: http://127.0.0.1:" in report
    assert "step 02-typed-a-name.png: 'typed a name'" in report
    assert "GET / -> 200" in report
    # A passing test writes nothing, and clears what an earlier failure of it left.
    assert not passed.exists()
    assert sorted(path.name for path in artifacts.iterdir()) == [failed.name]
