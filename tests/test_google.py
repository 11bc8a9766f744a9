"""GoogleProvider and Auth's redirect flow, on FakeGoogle (HTTP mocked with responses)."""

from __future__ import annotations

import gzip
import socket
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
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
    ProviderAlreadyLinked,
    ProviderError,
    ProviderUnavailable,
)
from bpart_auth.providers.google import GOOGLE_ISSUER, GOOGLE_METADATA_URL
from bpart_auth.store.sql import SQLStore
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
def auth(store, fake, facade):
    return facade(make_auth(store, fake))


@pytest.fixture
def ann(auth):
    return auth.create_account(email="ann@example.com", name="Ann")


def sign_in(auth, fake, **user):
    start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    return auth.complete(sealed_flow=start.sealed_flow, params=fake.authorize(start.url, **user))


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
    assert query["state"] not in start.sealed_flow  # sealed: nothing readable
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
        auth.complete(sealed_flow=second.sealed_flow, params=injected)
    assert caught.value.provider_code == "invalid_grant"


def test_a_callback_without_state_is_refused(auth, fake, ann):
    start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    params = fake.authorize(start.url)
    del params["state"]
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=start.sealed_flow, params=params)


@pytest.mark.parametrize("state", ["", "garbage", "v1.AAAA", "v2." + "A" * 100])
def test_garbage_state_is_refused(auth, state):
    with pytest.raises(InvalidFlowState):
        auth.complete(sealed_flow=state, params={"state": "x", "code": "y"})


def test_keys_and_discovery_are_fetched_once(auth, fake, ann):
    for _ in range(3):
        sign_in(auth, fake)
    assert fake.requests_seen["/.well-known/openid-configuration"] == 1
    assert fake.requests_seen["/oauth2/v3/certs"] == 1
    assert fake.requests_seen["/token"] == 3


def test_provider_down_is_provider_unavailable(store):
    google = GoogleProvider(
        client_id="id",
        client_secret="secret",
        metadata_url="https://google.down.test/.well-known/openid-configuration",
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
        auth.complete(
            sealed_flow=start.sealed_flow, params={"state": value, "code": "c", "iss": value}
        )


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
    assert f"{endpoint} is not a plain https URL" in caught.value.detail


# Hostile input at each boundary: the callback, the token endpoint, discovery.

GOOGLE_DISCOVERY = {
    # What https://accounts.google.com/.well-known/openid-configuration lists.
    "issuer": "https://accounts.google.com",
    "authorization_endpoint": "https://accounts.google.com/o/oauth2/v2/auth",
    "device_authorization_endpoint": "https://oauth2.googleapis.com/device/code",
    "token_endpoint": "https://oauth2.googleapis.com/token",
    "userinfo_endpoint": "https://openidconnect.googleapis.com/v1/userinfo",
    "revocation_endpoint": "https://oauth2.googleapis.com/revoke",
    "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs",
    "response_types_supported": ["code"],
    "id_token_signing_alg_values_supported": ["RS256"],
}
FAKE_TOKEN_ENDPOINT = "https://fake-google.test/token"


@pytest.fixture
def served():
    """A FakeGoogle in a `responses` mock the test may change, and that mock."""
    fake = FakeGoogle()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        yield fake, mock


def callback_for(auth, fake):
    start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
    return start, fake.authorize(start.url)


BAD_VALUES = [
    pytest.param(["x", "y"], "expected str, got list", id="list"),
    pytest.param(None, "expected str, got NoneType", id="none"),
    pytest.param(12, "expected str, got int", id="int"),
    pytest.param(b"bytes", "expected str, got bytes", id="bytes"),
    pytest.param("x" * 16_385, "longer than 16384", id="too-long"),
    pytest.param("\ud800", "lone surrogate", id="lone-surrogate"),
]


@pytest.mark.parametrize("name", ["state", "code", "error", "error_description", "iss"])
@pytest.mark.parametrize(("value", "detail"), BAD_VALUES)
def test_a_bad_callback_parameter_is_refused_before_anything_runs(
    served, store, name, value, detail
):
    fake, _ = served
    auth = make_auth(store, fake)
    auth.create_account(email="ann@example.com")
    start, params = callback_for(auth, fake)
    with pytest.raises(InvalidFlowState) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params={**params, name: value})
    assert caught.value.code == "invalid_flow_state"
    assert caught.value.detail.startswith(f"callback parameter {name}: ")
    assert detail in caught.value.detail
    assert "/token" not in fake.requests_seen  # no code exchange
    # Nothing ran: the flow is still unused, and its real callback completes.
    assert auth.complete(sealed_flow=start.sealed_flow, params=params).kind == "signed_in"


@pytest.mark.parametrize(
    "params",
    [
        pytest.param([("state", "s"), ("code", "c")], id="list-of-pairs"),
        pytest.param("state=s&code=c", id="query-string"),
        pytest.param(None, id="none"),
    ],
)
def test_params_must_be_a_mapping(auth, params):
    with pytest.raises(InvalidFlowState) as caught:
        auth.complete(sealed_flow="", params=params)
    assert caught.value.detail.startswith("callback parameters must be a mapping")


def test_parameters_nobody_reads_are_never_looked_at(served, store):
    fake, _ = served
    auth = make_auth(store, fake)
    ann = auth.create_account(email="ann@example.com")
    start, params = callback_for(auth, fake)
    odd = {"authuser": ["0", "1"], "prompt": None, "scope": 12, "hd": "\ud800"}
    assert (
        auth.complete(sealed_flow=start.sealed_flow, params={**params, **odd}).account.id == ann.id
    )


@pytest.mark.parametrize(("value", "detail"), BAD_VALUES)
def test_a_bad_state_argument_is_refused_before_any_crypto(auth, value, detail):
    with pytest.raises(InvalidFlowState) as caught:
        auth.complete(sealed_flow=value, params={"state": "s", "code": "c"})
    assert caught.value.detail.startswith("sealed_flow: ")
    assert detail in caught.value.detail


TOKEN_ANSWERS = [
    pytest.param(200, "[]", "provider_unavailable", "is a JSON list", id="json-array"),
    pytest.param(200, "null", "provider_unavailable", "is a JSON NoneType", id="json-null"),
    pytest.param(200, '"a.b.c"', "provider_unavailable", "is a JSON str", id="json-string"),
    pytest.param(
        200,
        '{"id_token": "a.b.c", "expires_in": 1e400}',
        "provider_unavailable",
        "overflows",
        id="expires-in-1e400",
    ),
    pytest.param(
        200,
        '{"id_token": "a.b.c", "expires_in": 1000000000000}',
        "provider_unavailable",
        "expires_in is not a number of seconds",
        id="expires-in-huge-int",
    ),
    pytest.param(
        200,
        '{"id_token": "a.b.c", "expires_in": -1}',
        "provider_unavailable",
        "expires_in is not a number of seconds",
        id="expires-in-negative",
    ),
    pytest.param(
        200,
        '{"id_token": "a.b.c", "expires_in": "3600"}',
        "provider_unavailable",
        "expires_in is not a number of seconds",
        id="expires-in-string",
    ),
    pytest.param(
        200,
        '{"id_token": "a.b.c", "expires_in": NaN}',
        "provider_unavailable",
        "not JSON",
        id="expires-in-nan",
    ),
    pytest.param(
        200,
        '{"x": "' + "a" * (1 << 20) + '"}',
        "provider_unavailable",
        "larger than",
        id="huge-body",
    ),
    pytest.param(200, "<html>Sign in</html>", "provider_unavailable", "not JSON", id="html-200"),
    pytest.param(200, b"\xff\xfe", "provider_unavailable", "not JSON", id="not-utf8"),
    pytest.param(200, "[" * 100_000, "provider_unavailable", "not JSON", id="deep-nesting"),
    pytest.param(
        200, '{"n": ' + "9" * 5000 + "}", "provider_unavailable", "not JSON", id="huge-int-literal"
    ),
    pytest.param(400, "<html>Bad</html>", "provider_unavailable", "not JSON", id="html-400"),
    pytest.param(
        400, "{}", "provider_unavailable", "without an OAuth error", id="400-without-error"
    ),
    pytest.param(302, "", "provider_unavailable", "not JSON", id="redirect"),
    pytest.param(500, "<html>Oops</html>", "provider_unavailable", "HTTP 500", id="500"),
    pytest.param(503, "", "provider_unavailable", "HTTP 503", id="503"),
    pytest.param(429, '{"error": "rate"}', "provider_unavailable", "HTTP 429", id="429"),
    pytest.param(
        400, '{"error": 12}', "provider_unavailable", "error is not a string", id="error-a-number"
    ),
    pytest.param(400, '{"error": ""}', "provider_unavailable", "error is empty", id="error-empty"),
    pytest.param(
        200,
        '{"id_token": ["a.b.c"]}',
        "provider_unavailable",
        "id_token is not a string",
        id="id-token-a-list",
    ),
    pytest.param(
        200,
        '{"access_token": "a", "scope": ["openid"]}',
        "provider_unavailable",
        "scope is not a string",
        id="scope-a-list",
    ),
    pytest.param(
        200,
        '{"access_token": "a", "token_type": "Bearer"}',
        "provider_error",
        "without id_token",
        id="no-id-token",
    ),
    pytest.param(
        200, '{"id_token": "not a token"}', "invalid_id_token", "malformed", id="id-token-garbage"
    ),
]


@pytest.mark.parametrize(("status", "body", "code", "detail"), TOKEN_ANSWERS)
def test_token_endpoint_answers_are_typed(served, store, status, body, code, detail):
    fake, mock = served
    mock.upsert("POST", FAKE_TOKEN_ENDPOINT, status=status, body=body)
    auth = make_auth(store, fake)
    ann = auth.create_account(email="ann@example.com")
    start, params = callback_for(auth, fake)
    with pytest.raises(ProviderError) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params=params)
    assert caught.value.code == code
    assert detail in caught.value.detail
    assert list(store.list_identities(ann.id)) == []


def test_a_compressed_answer_is_bounded_once_decompressed(served, store):
    fake, mock = served
    bomb = gzip.compress(b'{"id_token": "' + b"0" * (2 << 20) + b'"}')  # 2 KB on the wire
    mock.upsert("POST", FAKE_TOKEN_ENDPOINT, body=bomb, headers={"Content-Encoding": "gzip"})
    auth = make_auth(store, fake)
    start, params = callback_for(auth, fake)
    with pytest.raises(ProviderUnavailable) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params=params)
    assert "answer larger than 1048576 bytes" in caught.value.detail


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(requests.exceptions.ReadTimeout("read timed out"), id="timeout"),
        pytest.param(requests.exceptions.ConnectionError("refused"), id="connection-refused"),
        pytest.param(requests.exceptions.SSLError("bad certificate"), id="tls"),
    ],
)
def test_token_endpoint_network_failures_are_provider_unavailable(served, store, failure):
    fake, mock = served
    mock.upsert("POST", FAKE_TOKEN_ENDPOINT, body=failure)
    auth = make_auth(store, fake)
    start, params = callback_for(auth, fake)
    with pytest.raises(ProviderUnavailable) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params=params)
    assert caught.value.code == "provider_unavailable"
    assert type(failure).__name__ in caught.value.detail


def test_a_token_endpoint_oauth_error_keeps_error_and_description(served, store):
    fake, mock = served
    answer = {"error": "invalid_grant", "error_description": "Bad Request"}
    mock.upsert("POST", FAKE_TOKEN_ENDPOINT, status=400, json=answer)
    auth = make_auth(store, fake)
    start, params = callback_for(auth, fake)
    with pytest.raises(ProviderError) as caught:
        auth.complete(sealed_flow=start.sealed_flow, params=params)
    error = caught.value
    assert type(error) is ProviderError
    assert (error.provider_code, error.oauth_error) == ("invalid_grant", "invalid_grant")
    assert error.description == "Bad Request"


def test_error_redirects_keep_the_oauth_error(auth, fake):
    with pytest.raises(ConsentDeclined) as caught:
        sign_in(auth, fake, error="access_denied")
    assert caught.value.oauth_error == "access_denied"


@pytest.mark.parametrize(
    ("verified", "accepted"),
    [
        pytest.param(True, True, id="true"),
        pytest.param("true", True, id="string-true"),
        pytest.param(1, False, id="one"),
        pytest.param(1.0, False, id="one-float"),
        pytest.param("True", False, id="string-True"),
        pytest.param("yes", False, id="string-yes"),
        pytest.param([True], False, id="list"),
        pytest.param({"value": True}, False, id="object"),
        pytest.param(None, False, id="null"),
    ],
)
def test_email_verified_counts_only_when_exactly_true(auth, fake, ann, store, verified, accepted):
    claims = {"email_verified": verified}
    if accepted:
        assert sign_in(auth, fake, claims=claims).account.id == ann.id
    else:
        with pytest.raises(EmailNotVerified):
            sign_in(auth, fake, claims=claims)
        assert list(store.list_identities(ann.id)) == []


@pytest.mark.parametrize(
    ("claims", "error", "code"),
    [
        pytest.param({"email": ["ann@example.com"]}, IdentityNotLinked, None, id="email-a-list"),
        pytest.param({"email": 12}, IdentityNotLinked, None, id="email-a-number"),
        pytest.param(
            {"email": "ann@example.com" + " " * 600}, IdentityNotLinked, None, id="email-too-long"
        ),
        pytest.param(
            {"email": "\ud800@example.com"}, IdentityNotLinked, None, id="email-surrogate"
        ),
        pytest.param({"sub": "1" * 256}, InvalidIdToken, "sub", id="sub-too-long"),
        pytest.param({"exp": 10**400}, InvalidIdToken, "exp", id="exp-huge"),
        pytest.param({"iat": 1e308}, InvalidIdToken, "iat", id="iat-huge"),
        pytest.param({"nbf": -(10**400)}, InvalidIdToken, "nbf", id="nbf-huge-negative"),
    ],
)
def test_claims_of_the_wrong_type_or_size_are_refused_or_ignored(
    auth, fake, ann, store, claims, error, code
):
    with pytest.raises(error) as caught:
        sign_in(auth, fake, claims=claims)
    if code is not None:
        assert caught.value.detail.startswith(code)
    assert list(store.list_identities(ann.id)) == []


@pytest.mark.parametrize(
    "name", [pytest.param(["Ann"], id="list"), pytest.param({"x": 1}, id="object"), 12]
)
def test_a_name_that_is_not_text_is_ignored(auth, fake, ann, name):
    outcome = sign_in(auth, fake, claims={"name": name})
    assert outcome.account.id == ann.id


@pytest.mark.parametrize("hd", [["example.com"], 12, "x" * 300], ids=["list", "int", "too-long"])
def test_a_hosted_domain_that_is_not_text_is_not_allowed(store, fake, hd):
    auth = make_auth(store, fake, hosted_domains=["example.com"])
    auth.create_account(email="ann@example.com")
    with pytest.raises(HostedDomainNotAllowed):
        sign_in(auth, fake, claims={"hd": hd})


# Discovery: issuer pinned, endpoints on the expected hosts.

FAKE_METADATA_URL = "https://fake-google.test/.well-known/openid-configuration"

DISCOVERY_REFUSALS = [
    pytest.param(
        {"issuer": "https://evil.example"},
        "issuer 'https://evil.example' is not",
        id="another-issuer",
    ),
    pytest.param({"issuer": "https://fake-google.test"}, "issuer", id="the-metadata-host-issuer"),
    pytest.param({"issuer": ...}, "lacks the issuer", id="no-issuer"),
    pytest.param({"issuer": ["https://accounts.google.com"]}, "lacks the issuer", id="issuer-list"),
    pytest.param({"issuer": "x" * 3000}, "lacks the issuer", id="issuer-too-long"),
    pytest.param({"jwks_uri": ...}, "lacks the issuer or endpoints", id="no-jwks-uri"),
    pytest.param({"token_endpoint": 12}, "lacks the issuer or endpoints", id="token-endpoint-int"),
    pytest.param(
        {"authorization_endpoint": "https://evil.example/auth"},
        "authorization_endpoint is on evil.example, not on fake-google.test",
        id="authorization-endpoint-elsewhere",
    ),
    pytest.param(
        {"token_endpoint": "https://evil.example/token"},
        "token_endpoint is on evil.example",
        id="token-endpoint-elsewhere",
    ),
    pytest.param(
        {"jwks_uri": "https://www.googleapis.com/oauth2/v3/certs"},
        "jwks_uri is on www.googleapis.com",
        id="jwks-on-a-google-host-not-expected-here",
    ),
    pytest.param(
        {"jwks_uri": "https://fake-google.test:8443/certs"},
        "jwks_uri is on fake-google.test:8443",
        id="jwks-on-another-port",
    ),
    pytest.param(
        {"jwks_uri": "https://fake-google.test.evil.example/certs"},
        "jwks_uri is on fake-google.test.evil.example",
        id="jwks-on-a-lookalike-host",
    ),
    pytest.param(
        {"token_endpoint": "https://user:pw@fake-google.test/token"},
        "token_endpoint is not a plain https URL",
        id="token-endpoint-with-user-info",
    ),
    pytest.param(
        {"token_endpoint": "https://fake-google.test:99999/token"},
        "token_endpoint is not a plain https URL",
        id="token-endpoint-bad-port",
    ),
]


@pytest.mark.parametrize(("changes", "detail"), DISCOVERY_REFUSALS)
def test_a_discovery_document_is_checked_not_trusted(store, changes, detail):
    fake = FakeGoogle()
    document = {**fake._idp.metadata(), **changes}
    document = {name: value for name, value in document.items() if value is not ...}
    with responses.RequestsMock() as mock:
        mock.get(FAKE_METADATA_URL, json=document)
        auth = make_auth(store, fake)
        with pytest.raises(ProviderUnavailable) as caught:
            auth.begin_sign_in("google", redirect_uri=CALLBACK)
    assert caught.value.code == "provider_unavailable"
    assert detail in caught.value.detail


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        pytest.param({"status": 404}, "HTTP 404", id="404"),
        pytest.param({"status": 500}, "HTTP 500", id="500"),
        pytest.param(
            {"status": 301, "headers": {"Location": "https://evil.example/d"}},
            "HTTP 301",
            id="redirect-not-followed",
        ),
        pytest.param({"json": ["issuer"]}, "is a JSON list", id="json-array"),
        pytest.param({"body": "<html>"}, "not JSON", id="html"),
        pytest.param({"body": "{" + '"a":1,' * 200_000 + '"b":1}'}, "larger than", id="huge"),
        pytest.param(
            {"body": requests.exceptions.ConnectTimeout("slow")}, "ConnectTimeout", id="timeout"
        ),
    ],
)
def test_a_discovery_answer_that_cannot_be_read_is_provider_unavailable(store, answer, detail):
    fake = FakeGoogle()
    with responses.RequestsMock() as mock:
        mock.get(FAKE_METADATA_URL, **answer)
        auth = make_auth(store, fake)
        with pytest.raises(ProviderUnavailable) as caught:
            auth.begin_sign_in("google", redirect_uri=CALLBACK)
    assert detail in caught.value.detail


def test_a_refused_discovery_document_is_not_cached(store):
    fake = FakeGoogle()
    forged = {**fake._idp.metadata(), "issuer": "https://evil.example"}
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake.install(mock)
        mock.upsert("GET", FAKE_METADATA_URL, json=forged)
        auth = make_auth(store, fake)
        with pytest.raises(ProviderUnavailable):
            auth.begin_sign_in("google", redirect_uri=CALLBACK)
        mock.upsert("GET", FAKE_METADATA_URL, json=fake._idp.metadata())
        auth.create_account(email="ann@example.com")
        assert sign_in(auth, fake).kind == "signed_in"


@pytest.mark.parametrize(
    ("changes", "accepted"),
    [
        pytest.param({}, True, id="google-as-published"),
        pytest.param({"issuer": "accounts.google.com"}, True, id="the-other-spelling"),
        pytest.param({"issuer": "https://accounts.google.com/"}, False, id="trailing-slash"),
        pytest.param({"issuer": "https://evil.example"}, False, id="another-issuer"),
        pytest.param({"jwks_uri": "https://evil.example/certs"}, False, id="jwks-elsewhere"),
        pytest.param(
            {"token_endpoint": "https://oauth2.googleapis.com.evil.example/token"},
            False,
            id="token-endpoint-lookalike",
        ),
        pytest.param(
            {"authorization_endpoint": "http://accounts.google.com/o/oauth2/v2/auth"},
            False,
            id="plain-http",
        ),
    ],
)
def test_googles_own_discovery_document_is_pinned(store, changes, accepted):
    google = GoogleProvider(client_id="id", client_secret="secret")
    auth = Auth(store, secret_key=SECRET, providers=[google])
    with responses.RequestsMock() as mock:
        mock.get(GOOGLE_METADATA_URL, json={**GOOGLE_DISCOVERY, **changes})
        if accepted:
            start = auth.begin_sign_in("google", redirect_uri=CALLBACK)
            assert start.url.startswith("https://accounts.google.com/o/oauth2/v2/auth?")
        else:
            with pytest.raises(ProviderUnavailable):
                auth.begin_sign_in("google", redirect_uri=CALLBACK)


def test_another_provider_is_pinned_to_its_metadata_url(store):
    metadata_url = "https://idp.example/tenant-a/.well-known/openid-configuration"
    google = GoogleProvider(client_id="id", client_secret="secret", metadata_url=metadata_url)
    assert google.issuer == "https://idp.example/tenant-a"
    document = {
        "issuer": "https://idp.example/tenant-a",
        "authorization_endpoint": "https://idp.example/tenant-a/auth",
        "token_endpoint": "https://idp.example/tenant-a/token",
        "jwks_uri": "https://idp.example/tenant-a/certs",
    }
    auth = Auth(store, secret_key=SECRET, providers=[google])
    with responses.RequestsMock() as mock:
        mock.get(metadata_url, json=document)
        assert auth.begin_sign_in("google", redirect_uri=CALLBACK).url.startswith(
            "https://idp.example/tenant-a/auth?"
        )
    for issuer in ("https://idp.example/tenant-b", "https://idp.example"):
        auth = Auth(
            store,
            secret_key=SECRET,
            providers=[
                GoogleProvider(client_id="id", client_secret="secret", metadata_url=metadata_url)
            ],
        )
        with responses.RequestsMock() as mock:
            mock.get(metadata_url, json={**document, "issuer": issuer})
            with pytest.raises(ProviderUnavailable):
                auth.begin_sign_in("google", redirect_uri=CALLBACK)


def test_endpoint_hosts_widen_where_endpoints_may_live(store):
    fake = FakeGoogle()
    moved = {**fake._idp.metadata(), "jwks_uri": "https://keys.fake-google.test/certs"}
    google = GoogleProvider(
        client_id="fake-client.apps.googleusercontent.com",
        client_secret="fake-google-secret",
        metadata_url=FAKE_METADATA_URL,
        issuer=GOOGLE_ISSUER,
        endpoint_hosts=["fake-google.test", "KEYS.fake-google.test:443"],
    )
    auth = Auth(store, secret_key=SECRET, providers=[google])
    with responses.RequestsMock() as mock:
        mock.get(FAKE_METADATA_URL, json=moved)
        assert auth.begin_sign_in("google", redirect_uri=CALLBACK).url.startswith(
            "https://fake-google.test/"
        )


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(
            {"metadata_url": "https://idp.example/discovery"}, id="no-well-known-no-issuer"
        ),
        pytest.param({"issuer": "http://idp.example"}, id="issuer-plain-http"),
        pytest.param({"issuer": ""}, id="issuer-empty"),
        pytest.param({"endpoint_hosts": "accounts.google.com"}, id="endpoint-hosts-a-str"),
        pytest.param({"endpoint_hosts": []}, id="endpoint-hosts-empty"),
        pytest.param({"endpoint_hosts": ["https://accounts.google.com"]}, id="endpoint-host-url"),
        pytest.param({"endpoint_hosts": ["accounts.google.com/o"]}, id="endpoint-host-path"),
        pytest.param({"endpoint_hosts": ["user@accounts.google.com"]}, id="endpoint-host-user"),
        pytest.param({"endpoint_hosts": ["a.test:99999"]}, id="endpoint-host-bad-port"),
    ],
)
def test_bad_pinning_settings_are_refused_at_construction(settings):
    with pytest.raises(ConfigurationError):
        GoogleProvider(client_id="id", client_secret="s", **settings)


def test_an_explicit_issuer_is_what_discovery_must_name(store):
    metadata_url = "https://idp.example/.well-known/openid-configuration"
    google = GoogleProvider(
        client_id="id",
        client_secret="secret",
        metadata_url=metadata_url,
        issuer="https://issuer.example",
        endpoint_hosts=["idp.example"],
    )
    document = {
        "issuer": "https://issuer.example",
        "authorization_endpoint": "https://idp.example/auth",
        "token_endpoint": "https://idp.example/token",
        "jwks_uri": "https://idp.example/certs",
    }
    auth = Auth(store, secret_key=SECRET, providers=[google])
    with responses.RequestsMock() as mock:
        mock.get(metadata_url, json=document)
        assert auth.begin_sign_in("google", redirect_uri=CALLBACK).url.startswith(
            "https://idp.example/auth?"
        )


class _RacedStore(SQLStore):
    """Another request links the same identity while this one is between its check and
    its insert: the insert then loses on the database's unique index, as it does in a
    real race (ProviderAlreadyLinked: the account has a Google identity now)."""

    def link_identity(self, **kwargs):
        super().link_identity(**kwargs)  # the other tab's request, a moment earlier
        raise ProviderAlreadyLinked(provider="google")


def test_two_concurrent_first_sign_ins_with_one_identity_both_succeed(fake, tmp_path):
    # Found by the async benchmark: five tabs' first Google sign-ins at once, one account.
    store = _RacedStore(f"sqlite:///{tmp_path / 'raced.db'}", create_schema=True)
    auth = make_auth(store, fake)
    ann = auth.create_account(email="ann@example.com", name="Ann")
    linked = []
    auth.on("linked", linked.append)
    outcome = sign_in(auth, fake, email="ann@example.com", sub="ann-sub")
    assert (outcome.kind, outcome.account.id) == ("signed_in", ann.id)
    assert [link.identity.subject for link in store.list_identities(ann.id)] == ["ann-sub"]
    assert linked == []  # the request that linked it reports the link, not this one
