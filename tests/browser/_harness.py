"""The pieces behind the browser fixtures: Chromium's launch settings, `LiveServer`,
`Steps` and the evidence a failing test leaves in browser-artifacts/.

Nothing here imports Playwright at module level, so the module loads (and the fixtures
can skip with a clear reason) where Playwright is not installed.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import re
import shutil
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from werkzeug.serving import WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from typing_extensions import Self

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_ENV = "BPART_AUTH_BROWSER_ARTIFACTS"
DEFAULT_ARTIFACTS = REPO_ROOT / "browser-artifacts"

FALLBACK_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # containers and CI runners often forbid the user namespaces it needs
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every host name but loopback resolves to nothing: a page that pulls a font or a
    # script from the internet (oidc-provider's pages @import Google Fonts) fails that
    # request at once instead of leaking traffic or hanging until the load timeout.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
)
# Playwright's own default is 30 s; a loopback page that needs more is a bug to see.
DEFAULT_TIMEOUT_MS = 10_000
LOOPBACK = "127.0.0.1"


def chromium_executable() -> str | None:
    """The Chromium to launch: `chromium` on PATH, else /usr/bin/chromium, else None.

    `playwright install` downloads Playwright's own builds from a CDN; the tests use
    Debian's package instead (`./dev test` installs it), always by `executable_path`.
    """
    found = shutil.which("chromium")
    if found is not None:
        return found
    return FALLBACK_CHROMIUM if os.access(FALLBACK_CHROMIUM, os.X_OK) else None


def expect(actual: Any, message: str | None = None) -> Any:
    """`playwright.sync_api.expect`, imported on first use.

    Test modules import this one so that they load where Playwright is missing; the
    `browser` fixture then skips (or fails under CI) with the reason.
    """
    from playwright.sync_api import expect as playwright_expect  # noqa: PLC0415

    return playwright_expect(actual, message)


# --- LiveServer ------------------------------------------------------------------------

WSGIApp = Callable[..., Iterable[bytes]]


class _RecordingHandler(WSGIRequestHandler):
    """Werkzeug's handler, recording each request line on the LiveServer, not stderr."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:  # noqa: ARG002
        live: LiveServer | None = getattr(self.server, "live_server", None)
        if live is not None:
            live.requests.append(f"{self.command} {self.path} -> {getattr(code, 'value', code)}")


class LiveServer:
    """A WSGI app on http://127.0.0.1:<ephemeral port>, served from a daemon thread.

    The port is bound (and the URL known) when the object is made, before any app is
    given, so an identity provider can register `server.url + "/auth/callback"` first.
    Until `serve` is called, and after `clear`, every request gets a 503.

        server = LiveServer()
        register_callback(f"{server.url}/auth/callback")
        server.serve(app)          # or serve another app later: it replaces the first
        ...
        server.stop()              # also on `with LiveServer() as server:` exit

    `requests` keeps the last request lines ("GET /path -> 200"), `errors` the traceback
    of each exception that escaped the app (Flask only lets them escape with
    `app.testing = True`; otherwise it logs them and answers 500 itself).
    """

    def __init__(self) -> None:
        self._app: WSGIApp | None = None
        self.requests: collections.deque[str] = collections.deque(maxlen=500)
        self.errors: list[str] = []
        # Loopback only, always: a test server must never be reachable from the network.
        self._server = make_server(
            LOOPBACK, 0, self._dispatch, threaded=True, request_handler=_RecordingHandler
        )
        self._server.live_server = self  # type: ignore[attr-defined]  # read by the handler
        self.port: int = self._server.port
        self._stopped = False
        # serve_forever checks for shutdown every poll_interval: 50 ms keeps stop() quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"LiveServer {self.url}",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`, without a trailing slash."""
        return f"http://{LOOPBACK}:{self.port}"

    def serve(self, app: WSGIApp) -> LiveServer:
        """Serve `app` from now on (replacing any earlier one); returns the server."""
        if self._stopped:
            raise RuntimeError(f"{self.url} is stopped")
        self._app = app
        return self

    def clear(self) -> None:
        """Stop serving the app (503 again) and forget the request log and errors."""
        self._app = None
        self.requests.clear()
        self.errors.clear()

    def stop(self) -> None:
        """Stop listening and wait for the serving thread; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("serving" if self._app else "no app")
        return f"<LiveServer {self.url} {state}>"

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        app = self._app
        if app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"LiveServer: no app is being served\n"]
        try:
            return app(environ, start_response)
        except Exception:
            request = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
            self.errors.append(f"{request}\n{traceback.format_exc()}")
            raise


# --- steps and failure evidence --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Shot:
    name: str
    png: bytes | None  # None when Chromium could not capture it (noted in report.txt)
    url: str
    problem: str = ""


class Steps:
    """Named screenshots of the test's page, kept in memory until the test ends.

    `steps.shot("signed in")` records the page now; `with steps("sign in"): ...` records
    it when the block ends (as "sign in (failed)" when the block raises). Each shot is
    one viewport PNG (about 40 ms); nothing touches the disk unless the test fails, and
    then every shot is written as browser-artifacts/<test>/NN-<name>.png.
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.shots: list[Shot] = []

    def shot(self, name: str, *, page: Any = None) -> None:
        """Record a screenshot of `page` (default: the test's page) named `name`."""
        target = self.page if page is None else page
        try:
            png, problem = target.screenshot(type="png"), ""
        except Exception as exc:  # noqa: BLE001 - evidence must never fail the test itself
            # Chromium under load sometimes answers "Unable to capture screenshot".
            png, problem = None, f"could not capture the screenshot: {exc}"
        self.shots.append(Shot(name, png, target.url, problem))

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            with contextlib.suppress(Exception):
                self.shot(f"{name} (failed)")
            raise
        self.shot(name)


class Evidence:
    """What one test's browser session leaves behind when the test fails."""

    def __init__(self) -> None:
        self.pages: dict[str, Any] = {}
        self.steps: Steps | None = None
        self.servers: list[LiveServer] = []
        self.console: list[str] = []

    def watch(self, label: str, page: Any) -> None:
        """Track `page` (for the final screenshot) and log its console and failures."""
        self.pages[label] = page
        page.on(
            "console",
            lambda message: self.console.append(f"[{label}] {message.type}: {message.text}"),
        )
        page.on("pageerror", lambda error: self.console.append(f"[{label}] pageerror: {error}"))
        page.on(
            "requestfailed",
            lambda request: self.console.append(
                f"[{label}] request failed: {request.method} {request.url} ({request.failure})"
            ),
        )

    def write(self, folder: Path, *, test: str) -> list[str]:
        """Write the shots, a final screenshot, HTML and a report; the names written."""
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        written: list[str] = []
        report = [f"test: {test}", ""]
        shots = self.steps.shots if self.steps is not None else []
        for number, shot in enumerate(shots, start=1):
            name = f"{number:02d}-{_slug(shot.name)}.png"
            if shot.png is not None:
                (folder / name).write_bytes(shot.png)
                written.append(name)
            report.append(f"step {name}: {shot.name!r} at {shot.url} {shot.problem}".rstrip())
        number = len(shots)
        for label, page in self.pages.items():
            number += 1
            suffix = "final" if label == "page" else f"final-{_slug(label)}"
            report.append("")
            try:
                url, title = page.url, page.title()
                report += [f"{suffix} [{label}] url: {url}", f"{suffix} [{label}] title: {title!r}"]
                png = page.screenshot(type="png", full_page=True)
                (folder / f"{number:02d}-{suffix}.png").write_bytes(png)
                written.append(f"{number:02d}-{suffix}.png")
                (folder / f"{suffix}.html").write_text(page.content())
                written.append(f"{suffix}.html")
            except Exception as exc:  # noqa: BLE001 - a closed or crashed page still gets a report
                report.append(f"{suffix} [{label}]: could not capture the page: {exc}")
        if self.console:
            report += ["", "console and failed requests:", *self.console]
        for server in self.servers:
            report += ["", f"{server!r} requests (latest last):", *server.requests]
            report += [f"{server!r} unhandled exception:\n{error}" for error in server.errors]
        (folder / "report.txt").write_text("\n".join(report) + "\n")
        written.append("report.txt")
        return written

    def server_errors(self) -> list[str]:
        return [f"{server.url}: {error}" for server in self.servers for error in server.errors]


def artifacts_root() -> Path:
    """browser-artifacts/ at the repository root, or $BPART_AUTH_BROWSER_ARTIFACTS."""
    configured = os.environ.get(ARTIFACTS_ENV)
    return Path(configured).resolve() if configured else DEFAULT_ARTIFACTS


def artifacts_folder(nodeid: str) -> Path:
    """The folder of one test: `<module>.<test name>`, made safe for a file name.

    `tests/browser/test_demo.py::test_sign_in[google]` -> `test_demo.test_sign_in-google-`.
    """
    module, _, rest = nodeid.partition("::")
    name = f"{Path(module).stem}.{rest.replace('::', '.')}" if rest else Path(module).stem
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".")[:150] or "test"
    return artifacts_root() / safe


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "step"
