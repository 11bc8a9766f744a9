"""Browser fixtures: Playwright for Python driving Debian's Chromium against live servers.

Fixtures:

- `browser` (package scope): a headless Chromium (`playwright.sync_api.Browser`), launched by
  `executable_path` with `_harness.CHROMIUM_ARGS`. Skips locally and fails under CI=true
  when Playwright or Chromium is missing (`./dev test` installs both).
- `page`: a fresh context (`ignore_https_errors=True`, for the oidc-provider's test CA;
  10 s timeouts) and a page in it. `new_page(label)` opens more, each in its own context
  (two users side by side).
- `steps`: `steps.shot("signed in")`, or `with steps("sign in"): ...`, records named
  screenshots in memory. When the test fails, browser-artifacts/<module>.<test>/ (or
  $BPART_AUTH_BROWSER_ARTIFACTS/...) receives NN-<step>.png for each step, a final
  full-page screenshot and the HTML of every open page, and report.txt (URLs, console
  messages, failed requests, each live server's requests and errors); the failure report
  prints the folder. A passing test writes nothing (and removes its stale folder).
- `live_server`: a `LiveServer` of this test, stopped at teardown:
  `live_server.serve(app)`, then `page.goto(live_server.url + "/")`.
- `oidc_server` (session): oidc-provider (tests/e2e/oidc) whose Google and Microsoft
  clients also accept `callback_url`, `http://127.0.0.1:<port>/auth/callback` of
  `app_server`, the session-wide LiveServer: serve an app with that route on
  `app_server` (it is cleared after each test). Override `oidc_settings` in a conftest
  below this one to change accounts or clients.
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest

from conftest import service_missing
from e2e.oidc_fixture import OidcSettings, running_oidc_server

from ._harness import (
    CHROMIUM_ARGS,
    DEFAULT_TIMEOUT_MS,
    Evidence,
    LiveServer,
    Steps,
    artifacts_folder,
    chromium_executable,
)

CALLBACK_PATH = "/auth/callback"

EVIDENCE = pytest.StashKey[Evidence]()
REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    evidence = item.stash.get(EVIDENCE, None)
    if evidence is None or report.when not in {"setup", "call"}:
        return report
    folder = artifacts_folder(item.nodeid)
    if report.failed:
        # Now, while the test's pages are still open: fixture teardown comes later.
        written = evidence.write(folder, test=item.nodeid)
        report.sections.append(
            ("browser artifacts", f"{folder}/\n  " + "\n  ".join(written)),
        )
        errors = evidence.server_errors()
        if errors:
            report.sections.append(("live server errors", "\n".join(errors)))
    elif report.when == "call" and folder.is_dir():
        # A stale folder from an earlier failure would mislead whoever reads it next.
        shutil.rmtree(folder)
    return report


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in
# the main thread while it is started, and the async tests that run after this package
# (tests/test_aio.py, the AsyncAuth facade) need the thread without one.
@pytest.fixture(scope="package")
def browser():
    executable = chromium_executable()
    if executable is None:
        service_missing("Chromium", "no `chromium` on PATH nor /usr/bin/chromium; run ./dev test")
    try:
        from playwright.sync_api import expect, sync_playwright  # noqa: PLC0415
    except ImportError as exc:
        service_missing(
            "Chromium", f"Playwright for Python is not installed ({exc}); run ./dev test"
        )
    expect.set_options(timeout=DEFAULT_TIMEOUT_MS)
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
        )
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def _evidence(request) -> Evidence:
    evidence = Evidence()
    request.node.stash[EVIDENCE] = evidence
    return evidence


@pytest.fixture
def new_page(browser, _evidence):
    """`new_page(label)`: a page in a fresh browser context, closed after the test."""
    contexts = []

    def open_page(label: str):
        if label in _evidence.pages:
            raise ValueError(f"a page labelled {label!r} is already open")
        context = browser.new_context(ignore_https_errors=True)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        _evidence.watch(label, page)
        return page

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page("page")


@pytest.fixture
def steps(page, _evidence) -> Steps:
    _evidence.steps = Steps(page)
    return _evidence.steps


@pytest.fixture
def live_server(_evidence):
    with LiveServer() as server:
        _evidence.servers.append(server)
        yield server


# --- oidc-provider, with a callback on a session-wide LiveServer -------------------------


@pytest.fixture(scope="session")
def _app_server_for_session():
    with LiveServer() as server:
        yield server


@pytest.fixture(scope="session")
def callback_url(_app_server_for_session) -> str:
    return f"{_app_server_for_session.url}{CALLBACK_PATH}"


@pytest.fixture
def app_server(_app_server_for_session, _evidence):
    """The LiveServer whose /auth/callback `oidc_server` knows; cleared after the test."""
    server = _app_server_for_session
    server.clear()
    _evidence.servers.append(server)
    yield server
    server.clear()


@pytest.fixture(scope="session")
def oidc_settings(callback_url) -> OidcSettings:
    """The e2e defaults, with `callback_url` as every client's first redirect URI."""
    defaults = OidcSettings()

    def with_callback(client):
        return dataclasses.replace(client, redirect_uris=(callback_url, *client.redirect_uris))

    return dataclasses.replace(
        defaults,
        google_clients=tuple(map(with_callback, defaults.google_clients)),
        microsoft_clients=tuple(map(with_callback, defaults.microsoft_clients)),
    )


@pytest.fixture(scope="session")
def oidc_server(oidc_available, oidc_settings, tmp_path_factory):
    with running_oidc_server(oidc_settings, tmp_path_factory.mktemp("oidc-browser")) as server:
        yield server


@pytest.fixture
def example_auth(oidc_server, callback_url, tmp_path):
    """An `Auth` for the framework examples: SQLite, oidc-provider, the session callback.

    Second factors on, with passkeys for the callback's server as `localhost` (browsers
    refuse an IP address as RP id): a walk that uses passkeys opens the app there.
    """
    from bpart_auth import Auth, SQLStore  # noqa: PLC0415
    from bpart_auth.passkeys import RelyingParty  # noqa: PLC0415
    from bpart_auth.services.second_factors import SecondFactorPolicy  # noqa: PLC0415
    from bpart_auth.testing import CHEAP_FOR_TESTS  # noqa: PLC0415

    from ._oidc_pages import oidc_providers  # noqa: PLC0415

    store = SQLStore(f"sqlite:///{tmp_path / 'example.db'}", create_schema=True)
    localhost = callback_url.removesuffix(CALLBACK_PATH).replace("127.0.0.1", "localhost")
    yield Auth(
        store,
        secret_key="a browser-test secret key that is long enough",
        providers=oidc_providers(oidc_server),
        redirect_uri=callback_url,
        password_hashing=CHEAP_FOR_TESTS,
        second_factor=SecondFactorPolicy(
            relying_party=RelyingParty("localhost", "Back office", [localhost])
        ),
    )
    store.close()
