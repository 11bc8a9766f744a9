"""A provider's HTTP: every request through its one session, with that session's TLS settings.

Discovery, keys and the token exchange all go through the `requests.Session` the
app gives the provider (its mounted adapters see them), and the session's own
`verify` and `proxies` win over `REQUESTS_CA_BUNDLE` and `HTTPS_PROXY` for every one
of them, keys included. The environment is still honoured where the session sets
nothing, as `requests` does. HTTP is mocked with `responses` (through FakeGoogle and
FakeMicrosoft); a recording adapter mounted on the session sees what would be sent.
"""

from __future__ import annotations

import io

import pytest
import requests
import requests.structures
from requests.adapters import BaseAdapter

from bpart_auth import Auth, GoogleProvider, MemoryStore, MicrosoftProvider
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"
CUSTOM_CA = "/etc/ssl/our-private-ca.pem"
ENV_CA = "/etc/ssl/environment-ca.pem"


class RecordingAdapter(BaseAdapter):
    """A fake's endpoints, served in process; remembers what each request was sent with.

    The fakes register their endpoints with `install(mock)` on anything that has
    `add_callback` (written for `responses.RequestsMock`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[tuple[str, str], object] = {}
        self.sent: list[tuple[str, dict[str, object]]] = []
        self.headers: list[requests.structures.CaseInsensitiveDict[str]] = []

    def add_callback(self, method, url, callback, **_):
        self.routes[method.upper(), url] = callback

    def send(self, request, **kwargs):
        url = request.url.split("?", 1)[0]
        self.sent.append((url, kwargs))
        self.headers.append(request.headers)
        status, headers, body = self.routes[request.method, url](request)
        response = requests.Response()
        response.status_code = status
        response.headers = requests.structures.CaseInsensitiveDict(headers)
        response.raw = io.BytesIO(body.encode() if isinstance(body, str) else body)
        response.url, response.request = url, request
        return response

    def close(self) -> None:
        pass


def recording_session(**settings: object) -> tuple[requests.Session, RecordingAdapter]:
    session = requests.Session()
    adapter = RecordingAdapter()
    session.mount("https://", adapter)
    for name, value in settings.items():
        setattr(session, name, value)
    return session, adapter


def google_sign_in(session: requests.Session, times: int = 1) -> None:
    fake = FakeGoogle()  # not entered: it answers only through the session's adapter
    adapter = session.get_adapter("https://fake-google.test/")
    fake.install(adapter)
    provider = GoogleProvider(
        client_id=fake._idp.client_id,
        client_secret=fake._idp.client_secret,
        metadata_url=fake.metadata_url,
        issuer=fake.issuer,
        session=session,
    )
    auth = Auth(
        MemoryStore(),
        secret_key=SECRET,
        providers=[provider],
        password_hashing=CHEAP_FOR_TESTS,
    )
    auth.create_account(email="ann@example.com", name="Ann")
    for _ in range(times):
        start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
        outcome = auth.complete(sealed_flow=start.sealed_flow, params=fake.authorize(start.url))
        assert outcome.account.email == "ann@example.com"


def kinds(adapter: RecordingAdapter) -> set[str]:
    names = {"openid-configuration": "discovery", "jwks": "keys", "certs": "keys"}
    found = set()
    for url, _ in adapter.sent:
        last = url.rstrip("/").rsplit("/", 1)[-1]
        found.add(names.get(last, "token" if "token" in last else last))
    return found


def test_a_custom_verify_wins_over_requests_ca_bundle_for_every_request(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ENV_CA)
    monkeypatch.setenv("CURL_CA_BUNDLE", ENV_CA)
    session, adapter = recording_session(verify=CUSTOM_CA)
    google_sign_in(session)
    assert {"discovery", "keys", "token"} <= kinds(adapter)
    assert [kwargs["verify"] for _, kwargs in adapter.sent] == [CUSTOM_CA] * len(adapter.sent)


def test_without_a_custom_verify_the_environment_bundle_is_used(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ENV_CA)
    session, adapter = recording_session()
    google_sign_in(session)
    assert {kwargs["verify"] for _, kwargs in adapter.sent} == {ENV_CA}


def test_trust_env_false_ignores_the_environment(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ENV_CA)
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy.test:3128")
    session, adapter = recording_session(trust_env=False)
    google_sign_in(session)
    assert {kwargs["verify"] for _, kwargs in adapter.sent} == {True}
    assert all(not kwargs["proxies"] for _, kwargs in adapter.sent)


def test_the_session_proxies_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session, adapter = recording_session(proxies={"https": "http://our-proxy.test:3128"})
    google_sign_in(session)
    assert {kwargs["proxies"]["https"] for _, kwargs in adapter.sent} == {
        "http://our-proxy.test:3128"
    }
    plain, plain_adapter = recording_session()
    google_sign_in(plain)
    assert {kwargs["proxies"]["https"] for _, kwargs in plain_adapter.sent} == {
        "http://env-proxy.test:3128"
    }


def test_the_session_cert_headers_and_hooks_apply(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    seen_by_hook: list[int] = []
    session, adapter = recording_session(cert=("/client.pem", "/client.key"))
    session.headers["X-App"] = "backoffice"
    session.cookies.set("affinity", "node-7", domain="fake-google.test")

    def hook(response, **_):
        seen_by_hook.append(response.status_code)

    session.hooks["response"].append(hook)
    google_sign_in(session)
    assert {kwargs["cert"] for _, kwargs in adapter.sent} == {("/client.pem", "/client.key")}
    assert {headers.get("X-App") for headers in adapter.headers} == {"backoffice"}
    assert {headers.get("Cookie") for headers in adapter.headers} == {"affinity=node-7"}
    assert len(seen_by_hook) == len(adapter.sent) >= 3


def test_the_environment_is_read_once_per_origin_not_per_request(monkeypatch):
    session, adapter = recording_session()
    reads: list[str] = []
    real = requests.utils.get_environ_proxies

    def counting(url, no_proxy=None):
        reads.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr(requests.utils, "get_environ_proxies", counting)
    google_sign_in(session, times=5)
    assert len(adapter.sent) >= 7  # discovery, keys, five token requests
    assert len(reads) == 1  # the fake serves everything from one origin


def test_microsoft_sends_everything_through_its_session_with_its_verify(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", ENV_CA)
    session, adapter = recording_session(verify=CUSTOM_CA)
    fake = FakeMicrosoft(tenant="organizations")
    fake.install(adapter)
    provider = MicrosoftProvider(
        client_id=fake._idp.client_id,
        client_secret=fake._idp.client_secret,
        tenant="organizations",
        authority_host=fake.authority_host,
        session=session,
    )
    auth = Auth(
        MemoryStore(), secret_key=SECRET, providers=[provider], password_hashing=CHEAP_FOR_TESTS
    )
    account = auth.create_account(email="ann@example.com", name="Ann")
    start = auth.begin_link("microsoft", account_id=account.id, redirect_uri=CALLBACK)
    outcome = auth.complete(
        sealed_flow=start.sealed_flow, params=fake.authorize(start.url, oid="o-1")
    )
    assert outcome.kind == "linked"
    assert {"discovery", "keys", "token"} <= kinds(adapter)
    discovery = [url for url, _ in adapter.sent if url.endswith("openid-configuration")]
    assert len(discovery) == 1  # msal is answered with our checked copy
    assert {kwargs["verify"] for _, kwargs in adapter.sent} == {CUSTOM_CA}


@pytest.mark.parametrize("times", [1, 3])
def test_no_request_bypasses_the_session(monkeypatch, times):
    """Every request of a sign-in reaches the session's adapter: none from a session of its own."""
    outside: list[str] = []
    real_send = requests.Session.send

    def watch(self, request, **kwargs):
        if not isinstance(self.get_adapter(request.url), RecordingAdapter):
            outside.append(request.url)
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", watch)
    session, adapter = recording_session()
    google_sign_in(session, times=times)
    assert outside == []
    assert len(adapter.sent) == 2 + times  # discovery and keys once, a token request each
