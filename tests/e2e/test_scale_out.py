"""Scale-out, as a deployment runs: the Flask example in two worker processes.

Two real processes (tests/e2e/_workers.py), each with its own `Auth` on one PostgreSQL
database (schema created once, here), the same secret keys, Google and Microsoft on
the test oidc-provider, and one callback URL on one public origin,
`https://app.example.test`. `Browser` plays the user's browser behind a balancer: every
request carries what a browser sends to that origin (`Host`, `Sec-Fetch-Site`, and
`Origin` on its forms), so its one cookie jar holds the cookies for the public
host (requests files cookies under the `Host` header), whichever worker set them. The
test picks the worker of each request, and each redirect the browser follows goes to
the other one, so requests alternate. The balancer does TLS: the workers speak plain
HTTP and set their cookies without `Secure` (`secure_cookies=False`).

Why not a round-robin proxy: with the worker picked per request, each test says exactly
what crosses workers (a flow begun on A, its callback on B), whatever number of
redirects lie between; and every answer's `X-Worker` header proves who served it.

Everything runs twice: with the throttle in PostgreSQL (SQLStore's default) and in
Redis. Needs PostgreSQL, Redis (for the second) and node: locally each missing one
skips with its reason; under CI=true it fails instead.
"""

from __future__ import annotations

import dataclasses
import html
import re
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests

from bpart_auth import Auth, InvalidCredentials, InvalidFlowState, SQLStore, TooManyAttempts
from bpart_auth.testing import CHEAP_FOR_TESTS
from conftest import POSTGRES_URL, REDIS_URL, service_missing

from ._workers import Worker, start_workers
from .oidc_fixture import OidcSettings, running_oidc_server

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flask" / "flask_example.py"
PUBLIC_HOST = "app.example.test"
PUBLIC = f"https://{PUBLIC_HOST}"
CALLBACK = f"{PUBLIC}/auth/callback"
PASSWORD = "correct horse battery staple"
WRONG = "not the password at all"


# --- the browser, behind a balancer ---------------------------------------------------------


@dataclasses.dataclass
class Page:
    """A final answer: its status, its text (HTML entities decoded) and who served it."""

    response: requests.Response
    hops: list[str]  # "A POST /login 302", "B GET / 200", ...

    @property
    def text(self) -> str:
        return html.unescape(self.response.text)

    @property
    def served_by(self) -> str:
        """The worker of each hop, in order: "AB" for a POST on A redirected to B."""
        return "".join(hop.split()[0] for hop in self.hops)

    @property
    def location(self) -> str:
        return self.response.headers["Location"]


class Browser:
    """One user's browser: one cookie jar for the public host, whichever worker answers."""

    def __init__(self, workers: dict[str, Worker]) -> None:
        self.workers = workers
        self.http = requests.Session()
        self.http.trust_env = False  # no proxies from the environment

    def close(self) -> None:
        self.http.close()

    def other(self, name: str) -> str:
        return next(other for other in self.workers if other != name)

    def request(
        self,
        method: str,
        path: str,
        *,
        on: str,
        data: dict[str, str] | None = None,
        fetch_site: str = "same-origin",
    ) -> Page:
        """Send to worker `on`; follow redirects on the public origin, alternating workers.

        Stops at a redirect elsewhere (to a provider). `fetch_site` is what the browser
        sends in `Sec-Fetch-Site`: `same-origin` for the app's own forms, `cross-site`
        for the provider's redirect back.
        """
        hops: list[str] = []
        url = urllib.parse.urljoin(PUBLIC, path)
        while True:
            worker = self.workers[on]
            parts = urllib.parse.urlsplit(url)
            target = f"{worker.url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
            headers = {"Host": PUBLIC_HOST, "Sec-Fetch-Site": fetch_site}
            if method == "POST":
                headers["Origin"] = PUBLIC
            response = self.http.request(
                method, target, data=data, headers=headers, allow_redirects=False, timeout=15
            )
            served_by = response.headers.get("X-Worker")
            assert served_by == on, f"{target} was answered by {served_by!r}, not {on}"
            hops.append(f"{on} {method} {parts.path} {response.status_code}")
            if response.status_code >= 500:
                pytest.fail(f"{' -> '.join(hops)}\n--- worker {on} ---\n{worker.log_tail()}")
            if not response.is_redirect:
                return Page(response, hops)
            url = urllib.parse.urljoin(url, response.headers["Location"])
            if urllib.parse.urlsplit(url).netloc != PUBLIC_HOST:
                return Page(response, hops)  # to the provider: the test plays the user there
            method, data, fetch_site, on = "GET", None, "same-origin", self.other(on)

    def post(self, path: str, data: dict[str, str] | None = None, *, on: str) -> Page:
        return self.request("POST", path, data=data, on=on)

    def get(self, path: str, *, on: str) -> Page:
        return self.request("GET", path, on=on)

    def callback(self, params: dict[str, str], *, on: str) -> Page:
        """The provider's redirect back to the public callback URL, served by `on`."""
        query = urllib.parse.urlencode(params)
        return self.request("GET", f"/auth/callback?{query}", on=on, fetch_site="cross-site")


# --- the deployment -----------------------------------------------------------------------


@dataclasses.dataclass
class Deployment:
    throttle: str  # "sql" or "redis"
    workers: dict[str, Worker]
    auth: Auth  # the test's own, on the same database: to create accounts
    oidc: object
    redis_keys: object  # () -> list of Redis keys under this deployment's prefix


@pytest.fixture(scope="module")
def oidc(oidc_available, tmp_path_factory):
    """oidc-provider, with the public callback URL registered for Google and Microsoft."""
    defaults = OidcSettings()

    def with_callback(client):
        return dataclasses.replace(client, redirect_uris=(CALLBACK, *client.redirect_uris))

    settings = dataclasses.replace(
        defaults,
        google_clients=tuple(map(with_callback, defaults.google_clients)),
        microsoft_clients=tuple(map(with_callback, defaults.microsoft_clients)),
    )
    with running_oidc_server(settings, tmp_path_factory.mktemp("oidc-scale-out")) as server:
        yield server


@pytest.fixture(scope="module")
def redis_throttle_prefix():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        service_missing("Redis", f"{REDIS_URL} does not answer ({exc})")
    prefix = f"bpart_auth_test:{uuid.uuid4().hex}:"
    yield prefix, lambda: list(client.scan_iter(match=f"{prefix}*"))
    for key in client.scan_iter(match=f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module", params=["sql", pytest.param("redis", marks=pytest.mark.redis)])
def deployment(request, oidc, postgres_admin, tmp_path_factory):
    throttle = request.param
    # Redis first: a skip must come before anything is created here.
    redis = request.getfixturevalue("redis_throttle_prefix") if throttle == "redis" else None
    redis_keys = list if redis is None else redis[1]
    schema = f"bpart_scale_{throttle}_{uuid.uuid4().hex[:12]}"  # fresh tables, dropped after
    engine_options = {
        "connect_args": {"options": f"-csearch_path={schema}", "application_name": schema}
    }
    postgres_admin.execute(f"CREATE SCHEMA {schema}")
    store = SQLStore(POSTGRES_URL, engine_options=engine_options)
    workers: list[Worker] = []
    try:
        store.upgrade_schema()  # once, by the deployment: the workers only use it
        config = {
            "example": str(EXAMPLE),
            "database_url": POSTGRES_URL,
            "engine_options": engine_options,
            "secret_key": "the scale-out test's secret key, shared by every worker",
            "flask_secret_key": "the scale-out test's Flask key, shared by every worker",
            "redirect_uri": CALLBACK,
            "oidc": {
                "origin": oidc.origin,
                "ca_bundle": oidc.ca_bundle,
                "google_client_id": oidc.google_client.client_id,
                "google_client_secret": oidc.google_client.client_secret,
                "microsoft_client_id": oidc.microsoft_client.client_id,
                "microsoft_client_secret": oidc.microsoft_client.client_secret,
            },
        }
        if redis is not None:
            config["redis"] = {"url": REDIS_URL, "prefix": redis[0]}
        workdir = tmp_path_factory.mktemp(f"workers-{throttle}")
        workers = start_workers(config, ["A", "B"], workdir)
        auth = Auth(store, password_hashing=CHEAP_FOR_TESTS)
        yield Deployment(throttle, {w.name: w for w in workers}, auth, oidc, redis_keys)
    finally:
        for worker in workers:
            worker.stop()
        store.close()
        postgres_admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def browser(deployment):
    browser = Browser(deployment.workers)
    yield browser
    browser.close()


def signed_in_as(page: Page, email: str) -> bool:
    return f"Signed in as {email}." in page.text


# --- the tests ----------------------------------------------------------------------------


def test_a_password_sign_in_on_one_worker_holds_on_the_other(deployment, browser):
    deployment.auth.create_account(email="pat@example.com", password=PASSWORD)

    page = browser.post("/login", {"email": "pat@example.com", "password": PASSWORD}, on="A")

    assert page.hops[0] == "A POST /login 302"
    assert page.served_by == "AB"
    assert signed_in_as(page, "pat@example.com")
    # One session cookie, held for the public host, whichever worker set it.
    assert {cookie.domain for cookie in browser.http.cookies} == {PUBLIC_HOST}
    assert signed_in_as(browser.get("/", on="A"), "pat@example.com")
    page = browser.post("/logout", on="B")
    assert page.served_by == "BA"
    assert not signed_in_as(page, "pat@example.com")
    assert not signed_in_as(browser.get("/", on="B"), "pat@example.com")


def test_a_google_sign_in_begun_on_one_worker_completes_on_the_other(deployment, browser):
    # oidc-provider's Google account "ann" has this email, verified: it signs in here.
    deployment.auth.create_account(email="ann@example.com", password=PASSWORD)

    begun = browser.post("/login/google", on="A")
    assert begun.hops == ["A POST /login/google 302"]
    params = deployment.oidc.authorize(begun.location, login="ann")
    page = browser.callback(params, on="B")

    assert page.hops[0] == "B GET /auth/callback 302"
    assert page.served_by == "BA"
    assert signed_in_as(page, "ann@example.com")
    assert signed_in_as(browser.get("/", on="B"), "ann@example.com")


def test_a_microsoft_link_and_sign_in_cross_workers_both_ways(deployment, browser):
    # Microsoft never matches an account by email: link it first, then sign in with it.
    deployment.auth.create_account(email="mia@example.com", password=PASSWORD)
    browser.post("/login", {"email": "mia@example.com", "password": PASSWORD}, on="B")

    begun = browser.post("/link/microsoft", on="A")
    page = browser.callback(deployment.oidc.authorize(begun.location, login="work"), on="B")
    assert page.hops[0] == "B GET /auth/callback 302"
    assert "Unlink Microsoft" in page.text
    browser.post("/logout", on="A")

    begun = browser.post("/login/microsoft", on="B")
    assert begun.hops == ["B POST /login/microsoft 302"]
    page = browser.callback(deployment.oidc.authorize(begun.location, login="work"), on="A")

    assert page.hops[0] == "A GET /auth/callback 302"
    assert page.served_by == "AB"
    assert signed_in_as(page, "mia@example.com")


def test_a_replayed_callback_is_refused_on_either_worker(deployment, browser):
    deployment.auth.create_account(email="dave@gmail.example", password=PASSWORD)
    begun = browser.post("/login/google", on="A")
    params = deployment.oidc.authorize(begun.location, login="consumer")
    before = browser.http.cookies.copy()  # the session with the sealed flow in it
    assert signed_in_as(browser.callback(params, on="B"), "dave@gmail.example")

    # Same query, same session as before the first completion: only the store's
    # single-use record of the flow tells them apart, and both workers consult it.
    for worker in ("A", "B"):
        browser.http.cookies = before.copy()
        page = browser.callback(params, on=worker)
        assert page.hops[0] == f"{worker} GET /auth/callback 302"
        assert InvalidFlowState().message in page.text
        assert not signed_in_as(page, "dave@gmail.example")


def test_failed_passwords_on_both_workers_count_together(deployment, browser):
    deployment.auth.create_account(email="tess@example.com", password=PASSWORD)
    wrong = {"email": "tess@example.com", "password": WRONG}

    for attempt in range(5):  # the default limit: 5 failures per account
        worker = "AB"[attempt % 2]
        page = browser.post("/login", wrong, on=worker)
        assert page.hops[0] == f"{worker} POST /login 302"
        assert InvalidCredentials().message in page.text

    too_many = re.compile(
        re.escape(TooManyAttempts.default_message).replace(re.escape("{minutes}"), r"\d+")
    )
    right = {"email": "tess@example.com", "password": PASSWORD}
    for worker in ("B", "A"):  # B saw two failures, A three: neither alone reached five
        page = browser.post("/login", right, on=worker)
        assert too_many.search(page.text), page.text
        assert not signed_in_as(page, "tess@example.com")
    if deployment.throttle == "redis":
        assert deployment.redis_keys(), "the Redis throttle counted nothing"
