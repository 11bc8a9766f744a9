"""GoogleProvider and Auth's redirect flow, on FakeGoogle (HTTP mocked with responses)."""

from __future__ import annotations

import socket
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import responses

from bpart_auth import (
    AccountDisabled,
    Auth,
    ConfigurationError,
    ConsentDeclined,
    EmailNotVerified,
    GoogleProvider,
    HostedDomainNotAllowed,
    IdentityNotLinked,
    InvalidFlowState,
    InvalidIdToken,
    MemoryStore,
    ProviderError,
    ProviderUnavailable,
)
from bpart_auth.providers.google import GOOGLE_ISSUER
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"


@pytest.fixture
def fake():
    with FakeGoogle() as fake:
        yield fake


@pytest.fixture
def store():
    return MemoryStore()


def make_auth(store, fake, **provider):
    return Auth(
        store,
        secret_key=SECRET,
        providers=[fake.provider(**provider)],
        password_hashing=CHEAP_FOR_TESTS,
    )


@pytest.fixture
def auth(store, fake):
    return make_auth(store, fake)


@pytest.fixture
def ann(auth):
    return auth.create_account(email="ann@example.com", name="Ann")


def sign_in(auth, fake, **user):
    start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    return auth.complete(state=start.state, params=fake.authorize(start.url, **user))


def test_the_authorization_url_carries_state_nonce_and_pkce(auth, fake):
    start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    query = dict(parse_qsl(urlsplit(start.url).query))
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43
    assert query["redirect_uri"] == CALLBACK
    assert set(query["scope"].split()) == {"openid", "email", "profile"}
    assert query["state"] not in start.state  # sealed: nothing readable
    assert "code_verifier" not in start.url


def test_sign_in_by_verified_email_remembers_the_identity(auth, fake, store, ann):
    outcome = sign_in(auth, fake, email="ANN@example.com", sub="g-123")
    assert (outcome.kind, outcome.account.id) == ("signed_in", ann.id)
    assert outcome.identity.issuer == GOOGLE_ISSUER
    assert outcome.message == "You are signed in with Google."
    [link] = store.list_identities(ann.id)
    assert (link.identity.subject, link.email) == ("g-123", "ANN@example.com")
    # Later sign-ins go by the identity, whatever email Google then reports.
    assert sign_in(auth, fake, email="new-address@example.com", sub="g-123").account.id == ann.id


def test_both_google_issuer_spellings_are_one_identity(auth, fake, ann):
    first = sign_in(auth, fake, sub="g-1")
    second = sign_in(auth, fake, sub="g-1", claims={"iss": "accounts.google.com"})
    assert first.identity == second.identity
    assert second.account.id == ann.id


@pytest.mark.parametrize("verified", [False, "false"], ids=["bool", "string"])
def test_unverified_email_never_matches(auth, fake, ann, store, verified):
    with pytest.raises(EmailNotVerified):
        sign_in(auth, fake, email="ann@example.com", claims={"email_verified": verified})
    assert list(store.list_identities(ann.id)) == []


def test_string_true_email_verified_is_accepted(auth, fake, ann):
    assert sign_in(auth, fake, claims={"email_verified": "true"}).account.id == ann.id


def test_unknown_identity_and_email(auth, fake, ann):
    with pytest.raises(IdentityNotLinked) as caught:
        sign_in(auth, fake, email="stranger@example.com")
    assert "link Google from your profile" in str(caught.value)


def test_disabled_account(auth, fake, ann, store):
    auth.disable_account(ann.id)
    with pytest.raises(AccountDisabled):
        sign_in(auth, fake)
    assert list(store.list_identities(ann.id)) == []


@pytest.mark.parametrize(
    ("hd", "allowed"),
    [
        pytest.param("example.com", True, id="allowed-domain"),
        pytest.param("EXAMPLE.com", True, id="case-insensitive"),
        pytest.param("other.example", False, id="other-domain"),
        pytest.param(None, False, id="consumer-account"),
    ],
)
def test_hosted_domains_check_the_hd_claim(store, fake, hd, allowed):
    auth = make_auth(store, fake, hosted_domains=["example.com"])
    auth.create_account(email="ann@example.com")
    if allowed:
        assert sign_in(auth, fake, hd=hd).kind == "signed_in"
    else:
        with pytest.raises(HostedDomainNotAllowed):
            sign_in(auth, fake, hd=hd)


def test_hd_is_never_taken_from_the_email(store, fake):
    auth = make_auth(store, fake, hosted_domains=["example.com"])
    auth.create_account(email="ann@example.com")
    with pytest.raises(HostedDomainNotAllowed):
        sign_in(auth, fake, email="ann@example.com", hd=None)


def test_a_single_hosted_domain_is_hinted(store, fake):
    auth = make_auth(store, fake, hosted_domains=["example.com"])
    start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    assert dict(parse_qsl(urlsplit(start.url).query))["hd"] == "example.com"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param("access_denied", ConsentDeclined, id="declined"),
        pytest.param("server_error", ProviderError, id="server-error"),
        pytest.param("invalid_request", ProviderError, id="invalid-request"),
    ],
)
def test_error_redirects_are_typed_and_keep_the_provider_code(auth, fake, error, expected):
    with pytest.raises(expected) as caught:
        sign_in(auth, fake, error=error, error_description="details from Google")
    assert caught.value.provider_code == error
    assert caught.value.description == "details from Google"
    assert "details from Google" not in str(caught.value)


def test_forged_id_token_claims_are_refused(auth, fake, ann):
    with pytest.raises(InvalidIdToken):
        sign_in(auth, fake, claims={"iss": "https://evil.example"})
    with pytest.raises(InvalidIdToken):
        sign_in(auth, fake, claims={"aud": "someone-else"})
    with pytest.raises(InvalidIdToken):
        sign_in(auth, fake, claims={"exp": int(time.time()) - 3600})


def test_a_code_exchanged_with_the_wrong_verifier_is_refused(auth, fake, ann):
    first = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    second = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    params = fake.authorize(first.url)
    # The attacker injects a code obtained for another flow into this one.
    injected = {**params, "state": dict(parse_qsl(urlsplit(second.url).query))["state"]}
    with pytest.raises(ProviderError) as caught:
        auth.complete(state=second.state, params=injected)
    assert caught.value.provider_code == "invalid_grant"


def test_a_callback_without_state_is_refused(auth, fake, ann):
    start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    params = fake.authorize(start.url)
    del params["state"]
    with pytest.raises(InvalidFlowState):
        auth.complete(state=start.state, params=params)


@pytest.mark.parametrize("state", ["", "garbage", "v1.AAAA", "v2." + "A" * 100])
def test_garbage_state_is_refused(auth, state):
    with pytest.raises(InvalidFlowState):
        auth.complete(state=state, params={"state": "x", "code": "y"})


def test_keys_and_discovery_are_fetched_once(auth, fake, ann):
    for _ in range(3):
        sign_in(auth, fake)
    assert fake.requests_seen["/.well-known/openid-configuration"] == 1
    assert fake.requests_seen["/oauth2/v3/certs"] == 1
    assert fake.requests_seen["/token"] == 3


def test_provider_down_is_provider_unavailable(store):
    google = GoogleProvider(
        client_id="id", client_secret="secret", metadata_url="https://google.down.test/.well-known/openid-configuration"
    )
    auth = Auth(store, secret_key=SECRET, providers=[google])
    with responses.RequestsMock() as mock:
        mock.add("GET", "https://google.down.test/.well-known/openid-configuration", status=503)
        with pytest.raises(ProviderUnavailable) as caught:
            auth.begin_sign_in("google", redirect_uri=CALLBACK)
    assert caught.value.code == "provider_unavailable"


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"client_id": "", "client_secret": "s"}, id="no-client-id"),
        pytest.param({"client_id": "id", "client_secret": ""}, id="no-secret"),
        pytest.param(
            {"client_id": "id", "client_secret": "s", "hosted_domains": "a.com"}, id="hd-str"
        ),
        pytest.param(
            {"client_id": "id", "client_secret": "s", "hosted_domains": []}, id="hd-empty"
        ),
        pytest.param(
            {"client_id": "id", "client_secret": "s", "metadata_url": "http://x.test/d"},
            id="plain-http",
        ),
    ],
)
def test_bad_configuration_is_refused_at_construction(settings):
    with pytest.raises(ConfigurationError):
        GoogleProvider(**settings)


def test_providers_need_a_secret_key(store, fake):
    with pytest.raises(ConfigurationError):
        Auth(store, providers=[fake.provider()])
    with pytest.raises(ConfigurationError):
        Auth(store, secret_key="too short", providers=[fake.provider()])


def test_unknown_provider_name(auth):
    with pytest.raises(ConfigurationError):
        auth.begin_sign_in("microsoft", redirect_uri=CALLBACK)


def test_construction_makes_no_network_call(monkeypatch, store):
    def refuse(*args, **kwargs):
        raise AssertionError("network used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    google = GoogleProvider(client_id="id", client_secret="secret")
    Auth(store, secret_key=SECRET, providers=[google])


@pytest.mark.parametrize("value", ["\ud800", "é", "x" * 10_000])
def test_odd_callback_state_values_are_invalid_flow_state(auth, value):
    start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    with pytest.raises(InvalidFlowState):
        auth.complete(state=start.state, params={"state": value, "code": "c", "iss": value})


def test_provider_names(auth, store):
    assert auth.provider_names == ("google",)
    assert Auth(store).provider_names == ()


def test_first_sign_in_by_email_reports_the_link(auth, fake, ann):
    events = []
    auth.on("linked", events.append)
    auth.on("signed_in", events.append)
    sign_in(auth, fake, sub="g-1")
    sign_in(auth, fake, sub="g-1")
    assert [event.kind for event in events] == ["linked", "signed_in", "signed_in"]


def test_a_second_google_identity_with_the_same_email_is_not_linked(auth, fake, ann, store):
    sign_in(auth, fake, sub="g-1")
    with pytest.raises(IdentityNotLinked):
        sign_in(auth, fake, sub="g-2")
    assert [link.identity.subject for link in store.list_identities(ann.id)] == ["g-1"]


@pytest.mark.parametrize("endpoint", ["authorization_endpoint", "token_endpoint", "jwks_uri"])
def test_a_discovery_document_with_a_plain_http_endpoint_is_refused(store, endpoint):
    fake = FakeGoogle()
    metadata = {**fake._idp.metadata(), endpoint: "http://fake-google.test/plain"}
    with responses.RequestsMock() as mock:
        mock.get(fake.metadata_url, json=metadata)
        auth = make_auth(store, fake)
        with pytest.raises(ProviderUnavailable) as caught:
            auth.begin_sign_in("google", redirect_uri=CALLBACK)
    assert f"{endpoint} not https" in caught.value.detail
