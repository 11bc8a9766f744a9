"""The breached-password check, against a `responses` stand-in for Pwned Passwords."""

from __future__ import annotations

import gzip
import hashlib
import logging
import re

import pytest
import requests
import responses

from bpart_auth import (
    Auth,
    ConfigurationError,
    MemoryStore,
    PasswordBreached,
    PasswordCheckUnavailable,
    PasswordPolicy,
    PasswordRejected,
    PwnedPasswords,
)
from bpart_auth.testing import CHEAP_FOR_TESTS

PASSWORD = "correct horse battery staple"
DIGEST = hashlib.sha1(PASSWORD.encode()).hexdigest().upper()  # noqa: S324 - the API's key
PREFIX, SUFFIX = DIGEST[:5], DIGEST[5:]
RANGE_URL = f"https://api.pwnedpasswords.com/range/{PREFIX}"
ANY_RANGE = re.compile(r"https://api\.pwnedpasswords\.com/range/.*")


def answer(*rows: tuple[str, int], padding: int = 800) -> str:
    """A range answer: the given rows among `padding` made-up rows of count 0."""
    made_up = [
        (hashlib.sha1(str(index).encode()).hexdigest().upper()[5:], 0)  # noqa: S324
        for index in range(padding)
    ]
    return "\r\n".join(f"{suffix}:{count}" for suffix, count in [*made_up, *rows])


@pytest.fixture
def mock():
    with responses.RequestsMock() as mock:
        yield mock


def test_only_the_five_character_prefix_is_sent(mock):
    mock.get(RANGE_URL, body=answer((SUFFIX, 42)))
    with pytest.raises(PasswordBreached):
        PwnedPasswords().check(PASSWORD)
    (call,) = mock.calls
    assert call.request.url == RANGE_URL
    assert len(PREFIX) == 5
    assert call.request.headers["Add-Padding"] == "true"
    assert call.request.body is None
    sent = call.request.url + repr(dict(call.request.headers))
    assert SUFFIX not in sent
    assert PASSWORD not in sent


@pytest.mark.parametrize(
    ("rows", "threshold", "count"),
    [
        pytest.param([(SUFFIX, 3_861_493)], 1, 3_861_493, id="seen-many-times"),
        pytest.param([(SUFFIX, 1)], 1, 1, id="seen-once"),
        pytest.param([(SUFFIX.lower(), 7)], 1, 7, id="lower-case-suffix"),
        pytest.param([(SUFFIX, 10)], 10, 10, id="at-the-threshold"),
    ],
)
def test_a_breached_password_is_refused(mock, rows, threshold, count):
    mock.get(RANGE_URL, body=answer(*rows))
    with pytest.raises(PasswordRejected) as caught:
        PasswordPolicy(breached=PwnedPasswords(threshold=threshold)).check(PASSWORD)
    assert caught.value.code == "password_breached"
    assert caught.value.count == count
    assert caught.value.field == "password"


@pytest.mark.parametrize(
    ("rows", "threshold"),
    [
        pytest.param([], 1, id="not-listed"),
        pytest.param([(SUFFIX, 0)], 1, id="a-padding-row"),
        pytest.param([(SUFFIX, 9)], 10, id="under-the-threshold"),
        pytest.param([(SUFFIX[:-1] + "X", 5)], 1, id="another-suffix"),
    ],
)
def test_a_password_not_breached_enough_is_accepted(mock, rows, threshold):
    mock.get(RANGE_URL, body=answer(*rows))
    policy = PasswordPolicy(breached=PwnedPasswords(threshold=threshold))
    assert policy.check(PASSWORD) == PASSWORD
    assert len(mock.calls) == 1


def test_the_normalised_password_is_checked(mock):
    mock.get(RANGE_URL, body=answer((SUFFIX, 2)))
    fullwidth_c = "\uff43" + PASSWORD[1:]  # NFKC makes it PASSWORD
    with pytest.raises(PasswordBreached):
        PasswordPolicy(breached=PwnedPasswords()).check(fullwidth_c)


def test_a_gzip_answer_is_read(mock):
    body = gzip.compress(answer((SUFFIX, 5)).encode())
    mock.get(RANGE_URL, body=body, headers={"Content-Encoding": "gzip"})
    assert PwnedPasswords().count(PASSWORD) == 5


def test_the_given_session_and_timeout_are_used(mock):
    session = requests.Session()
    session.headers["X-Proxy-Team"] = "back-office"
    mock.get(RANGE_URL, body=answer())
    PwnedPasswords(session=session, timeout=0.5).check(PASSWORD)
    assert mock.calls[0].request.headers["X-Proxy-Team"] == "back-office"
    assert mock.calls[0].request.req_kwargs["timeout"] == 0.5


def test_a_mirror_url_is_asked_instead(mock):
    mock.get(f"https://pwned.internal.example/v1/{PREFIX}", body=answer((SUFFIX, 3)))
    mirror = PwnedPasswords(url="https://pwned.internal.example/v1/{prefix}")
    assert mirror.count(PASSWORD) == 3


def test_rules_that_refuse_first_send_nothing(mock):
    policy = PasswordPolicy(breached=PwnedPasswords())
    for refused in ("short", "qwertyuiopasdfghjkl", "a" * 20):
        with pytest.raises(PasswordRejected):
            policy.check(refused)
    assert len(mock.calls) == 0


def test_no_request_at_construction(mock):
    PasswordPolicy(breached=PwnedPasswords())
    assert len(mock.calls) == 0


# The service cannot answer: the setting decides.

UNAVAILABLE = [
    pytest.param({"body": requests.ConnectionError("refused")}, id="connection-error"),
    pytest.param({"body": requests.ReadTimeout("slow")}, id="timeout"),
    pytest.param({"status": 503, "body": "busy"}, id="http-503"),
    pytest.param({"status": 429, "body": "slow down"}, id="http-429"),
    pytest.param(
        {"status": 302, "headers": {"Location": "https://elsewhere.example/"}}, id="redirect"
    ),
    pytest.param({"body": answer(padding=30_000)}, id="answer-over-1-mib"),
    pytest.param(
        {
            "body": gzip.compress((b"0" * 35 + b":0\r\n") * 250_000),
            "headers": {"Content-Encoding": "gzip"},
        },
        id="gzip-bomb",
    ),
    pytest.param({"body": "<html>maintenance</html>"}, id="not-the-range-format"),
    pytest.param({"body": f"{SUFFIX}:many"}, id="count-not-a-number"),
    pytest.param({"body": "\u00e9".encode("latin-1")}, id="not-ascii"),
]


@pytest.mark.parametrize("reply", UNAVAILABLE)
def test_unavailable_fails_open_with_a_warning_by_default(mock, caplog, reply):
    mock.get(RANGE_URL, **reply)
    with caplog.at_level(logging.WARNING, logger="bpart_auth.passwords"):
        assert PasswordPolicy(breached=PwnedPasswords()).check(PASSWORD) == PASSWORD
    (record,) = caplog.records
    assert record.name == "bpart_auth.passwords"
    assert record.levelno == logging.WARNING
    assert "Pwned Passwords check skipped" in record.getMessage()
    for secret in (PASSWORD, PREFIX, SUFFIX):
        assert secret not in record.getMessage()


@pytest.mark.parametrize("reply", UNAVAILABLE)
def test_unavailable_can_fail_closed(mock, reply):
    mock.get(RANGE_URL, **reply)
    policy = PasswordPolicy(breached=PwnedPasswords(if_unavailable="refuse"))
    with pytest.raises(PasswordCheckUnavailable) as caught:
        policy.check(PASSWORD)
    assert caught.value.code == "password_check_unavailable"
    assert caught.value.detail
    assert PREFIX not in caught.value.detail
    assert str(caught.value) == (
        "Your new password could not be checked right now. Please try again in a moment."
    )


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"threshold": 0}, id="threshold-0"),
        pytest.param({"threshold": True}, id="threshold-bool"),
        pytest.param({"threshold": 1.5}, id="threshold-float"),
        pytest.param({"if_unavailable": "ignore"}, id="unknown-if-unavailable"),
        pytest.param({"timeout": 0}, id="timeout-0"),
        pytest.param({"timeout": -1.0}, id="timeout-negative"),
        pytest.param({"timeout": float("inf")}, id="timeout-infinite"),
        pytest.param({"timeout": "2"}, id="timeout-str"),
        pytest.param({"session": object()}, id="session-not-requests"),
        pytest.param({"url": "http://api.pwnedpasswords.com/range/{prefix}"}, id="url-http"),
        pytest.param({"url": "https://api.pwnedpasswords.com/range/"}, id="url-no-prefix"),
    ],
)
def test_bad_settings_are_refused(settings):
    with pytest.raises(ConfigurationError) as caught:
        PwnedPasswords(**settings)
    assert caught.value.code == "configuration_error"
    assert caught.value.detail


def test_the_policy_wants_a_pwned_passwords_check():
    with pytest.raises(ConfigurationError):
        PasswordPolicy(breached=lambda _password: True)


# Through Auth: every way to set a password runs the check.


def test_every_new_password_is_checked_through_auth(mock):
    mock.get(ANY_RANGE, body=answer((SUFFIX, 12)))
    auth = Auth(
        MemoryStore(),
        password_hashing=CHEAP_FOR_TESTS,
        password_policy=PasswordPolicy(breached=PwnedPasswords()),
    )
    with pytest.raises(PasswordBreached):
        auth.create_account(email="ann@example.com", password=PASSWORD)
    ann = auth.create_account(email="ann@example.com", password="a safe new passphrase")
    with pytest.raises(PasswordBreached):
        auth.passwords.change(ann.id, current="a safe new passphrase", new=PASSWORD)
    token = auth.passwords.begin_reset("ann@example.com")
    with pytest.raises(PasswordBreached):
        auth.passwords.complete_reset(token, new_password=PASSWORD)
    _, invite_token = auth.invites.create("bob@example.com")
    with pytest.raises(PasswordBreached):
        auth.invites.accept_with_password(invite_token, password=PASSWORD)
    # Signing in with an existing password asks nothing.
    calls = len(mock.calls)
    auth.passwords.sign_in("ann@example.com", "a safe new passphrase")
    assert len(mock.calls) == calls
