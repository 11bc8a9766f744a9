"""What an app's session relies on: the default callback URL, session stamps, CSRF checks."""

from __future__ import annotations

import dataclasses
from datetime import timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import pytest

from bpart_auth import Auth, ConfigurationError, MemoryStore
from bpart_auth.testing import CHEAP_FOR_TESTS
from conftest import Clock

SECRET = "a unit-test secret key of 32+ bytes"
CALLBACK = "https://backoffice.test/auth/callback"
OTHER_CALLBACK = "https://backoffice.test/other/callback"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def auth(auth_with_fakes, clock):
    return auth_with_fakes(clock=clock, redirect_uri=CALLBACK)


def redirect_uri_of(start):
    return dict(parse_qsl(urlsplit(start.url).query))["redirect_uri"]


# The default callback URL


def test_every_begin_uses_the_default_callback_and_completes(auth, fakes):
    google, microsoft = fakes
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    _, token = auth.invites.create("bob@example.com")
    starts = {
        "sign_in": auth.begin_sign_in("google"),
        "link": auth.begin_link("microsoft", account_id=ann.id),
        "accept": auth.invites.begin_accept("microsoft", token),
    }
    assert {name: redirect_uri_of(start) for name, start in starts.items()} == dict.fromkeys(
        starts, CALLBACK
    )
    signed_in = auth.complete(
        sealed_flow=starts["sign_in"].sealed_flow,
        params=google.authorize(starts["sign_in"].url, email="ann@example.com"),
    )
    linked = auth.complete(
        sealed_flow=starts["link"].sealed_flow,
        params=microsoft.authorize(starts["link"].url, oid="oid-ann"),
    )
    registered = auth.complete(
        sealed_flow=starts["accept"].sealed_flow, params=microsoft.authorize(starts["accept"].url)
    )
    assert (signed_in.kind, signed_in.account.id) == ("signed_in", ann.id)
    assert (linked.kind, linked.account.id) == ("linked", ann.id)
    assert (registered.kind, registered.account.email) == ("registered", "bob@example.com")


def test_a_redirect_uri_given_to_begin_wins_over_the_default(auth):
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    _, token = auth.invites.create("bob@example.com")
    starts = [
        auth.begin_sign_in("google", redirect_uri=OTHER_CALLBACK),
        auth.begin_link("google", account_id=ann.id, redirect_uri=OTHER_CALLBACK),
        auth.invites.begin_accept("google", token, redirect_uri=OTHER_CALLBACK),
    ]
    assert [redirect_uri_of(start) for start in starts] == [OTHER_CALLBACK] * 3


@pytest.mark.parametrize("intent", ["sign_in", "link", "accept"])
def test_no_redirect_uri_anywhere_is_a_configuration_error(auth_with_fakes, clock, intent):
    auth = auth_with_fakes(clock=clock)
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    _, token = auth.invites.create("bob@example.com")
    begin = {
        "sign_in": lambda: auth.begin_sign_in("google"),
        "link": lambda: auth.begin_link("google", account_id=ann.id),
        "accept": lambda: auth.invites.begin_accept("google", token),
    }[intent]
    with pytest.raises(ConfigurationError) as caught:
        begin()
    assert caught.value.code == "configuration_error"
    assert "redirect_uri" in caught.value.detail


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("", id="empty"),
        pytest.param("/auth/callback", id="relative"),
        pytest.param("backoffice.test/auth/callback", id="no-scheme"),
        pytest.param("ftp://backoffice.test/auth/callback", id="not-http"),
        pytest.param("https:///auth/callback", id="no-host"),
        pytest.param("https://backoffice.test/auth/callback#top", id="fragment"),
        pytest.param("https://backoffice.test:99999/auth/callback", id="port-out-of-range"),
        pytest.param("https://[::1/auth/callback", id="broken-ipv6"),
    ],
)
def test_a_malformed_default_redirect_uri_is_refused_at_construction(redirect_uri):
    with pytest.raises(ConfigurationError) as caught:
        Auth(MemoryStore(), redirect_uri=redirect_uri)
    assert "redirect_uri" in caught.value.detail


# Session stamps


def test_a_stamp_opens_its_account_until_the_credentials_change(auth, clock):
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    signed_in = auth.passwords.sign_in("ann@example.com", PASSWORD)
    stamp = auth.sessions.stamp(signed_in)
    assert auth.sessions.account(stamp) == ann

    clock.now += timedelta(seconds=1)
    auth.passwords.change(ann.id, current=PASSWORD, new="another fine passphrase")
    assert auth.sessions.account(stamp) is None  # a session from before the change ends
    changed = auth.get_account(ann.id)
    assert auth.sessions.account(auth.sessions.stamp(changed)) == changed


@pytest.mark.parametrize(
    "backend", ["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_stamps_survive_the_stores_round_trip(request, fakes, clock, backend):
    _, microsoft = fakes
    if backend == "memory":
        store = MemoryStore()
    else:
        store = request.getfixturevalue(f"{backend}_db").store(create_schema=True)
    auth = Auth(
        store,
        secret_key=SECRET,
        providers=[microsoft.provider()],
        redirect_uri=CALLBACK,
        password_hashing=CHEAP_FOR_TESTS,
        clock=clock,
    )
    created = auth.create_account(email="ann@example.com", password=PASSWORD)
    signed_in = auth.passwords.sign_in("ann@example.com", PASSWORD)
    clock.now += timedelta(microseconds=1)
    start = auth.begin_link("microsoft", account_id=created.id)
    linked = auth.complete(
        sealed_flow=start.sealed_flow, params=microsoft.authorize(start.url)
    ).account
    clock.now += timedelta(microseconds=1)
    unlinked = auth.unlink(created.id, "microsoft")
    stamps = [auth.sessions.stamp(account) for account in (created, signed_in, linked, unlinked)]
    assert [auth.sessions.account(stamp) for stamp in stamps] == [None, None, None, unlinked]


def test_a_stamp_ends_with_a_disabled_account_for_good(auth, clock):
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    stamp = auth.sessions.stamp(ann)
    clock.now += timedelta(seconds=1)
    disabled = auth.disable_account(ann.id)
    assert auth.sessions.account(stamp) is None
    enabled = auth.enable_account(ann.id)
    assert (disabled.disabled, enabled.disabled) == (True, False)
    # Disabling stamped the credentials: a session the app did not clear stays ended.
    assert auth.sessions.account(stamp) is None
    assert auth.sessions.account(auth.sessions.stamp(enabled)) == enabled


def test_a_link_from_this_session_gives_the_stamp_that_keeps_it(auth, fakes, clock):
    _, microsoft = fakes
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    before = auth.sessions.stamp(ann)
    clock.now += timedelta(seconds=1)
    start = auth.begin_link("microsoft", account_id=ann.id)
    outcome = auth.complete(sealed_flow=start.sealed_flow, params=microsoft.authorize(start.url))
    assert auth.sessions.account(before) is None
    assert auth.sessions.account(auth.sessions.stamp(outcome.account)) == outcome.account


def test_a_stamp_is_one_string_with_no_secret(auth):
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    stamp = auth.sessions.stamp(ann)
    assert isinstance(stamp, str)
    assert ann.id in stamp
    assert "argon2" not in stamp


def test_an_account_id_with_spaces_survives_the_stamp():
    store = MemoryStore()  # a store may choose any ids: put one with spaces in it
    auth = Auth(store)
    spaced = dataclasses.replace(auth.create_account(email="ann@example.com"), id="an id")
    store._accounts[spaced.id] = spaced
    assert auth.sessions.account(auth.sessions.stamp(spaced)) == spaced


@pytest.mark.parametrize(
    "stamp",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("2030-01-01T00:00:00+00:00", id="no-account-id"),
        pytest.param("2030-01-01T00:00:00+00:00 ", id="empty-account-id"),
        pytest.param("2030-01-01T00:00:00 {id}", id="naive-time"),
        pytest.param("yesterday {id}", id="not-a-time"),
        pytest.param("2030-01-01T00:00:00+00:00 no-such-account", id="unknown-account"),
        pytest.param(12345, id="not-a-string"),
        pytest.param(["2030-01-01T00:00:00+00:00 {id}"], id="a-list"),
        pytest.param("2030-01-01T00:00:00+00:00 " + "x" * 1_000_000, id="one-megabyte"),
        pytest.param("2030-01-01T00:00:00+00:00 \ud800", id="lone-surrogate"),
    ],
)
def test_a_malformed_or_foreign_stamp_opens_nothing(auth, stamp):
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    if isinstance(stamp, str):
        stamp = stamp.format(id=ann.id)
    assert auth.sessions.account(stamp) is None


def test_a_stamp_names_one_version_of_the_credentials(auth):
    # Not a time to compare with: a change stamped by an app instance whose clock is
    # behind still ends the sessions that began before it.
    ann = auth.create_account(email="ann@example.com", password=PASSWORD)
    for moved in (timedelta(days=1), -timedelta(microseconds=1)):
        version = ann.credentials_changed_at + moved
        assert auth.sessions.account(f"{version.isoformat()} {ann.id}") is None
    same = ann.credentials_changed_at.astimezone(timezone(timedelta(hours=2)))
    assert auth.sessions.account(f"{same.isoformat()} {ann.id}") == ann  # the same instant


# Cross-origin requests (CSRF)

APP = "https://backoffice.test"


@pytest.mark.parametrize(
    ("method", "headers", "refused"),
    [
        pytest.param("GET", {"Sec-Fetch-Site": "cross-site"}, False, id="get-is-safe"),
        pytest.param("HEAD", {"Origin": "https://evil.test"}, False, id="head-is-safe"),
        pytest.param("OPTIONS", {}, False, id="options-is-safe"),
        pytest.param("POST", {"Sec-Fetch-Site": "same-origin"}, False, id="same-origin"),
        pytest.param("POST", {"Sec-Fetch-Site": "none"}, False, id="user-navigation"),
        pytest.param("POST", {"Sec-Fetch-Site": "same-site"}, True, id="sibling-subdomain"),
        pytest.param("POST", {"Sec-Fetch-Site": "cross-site"}, True, id="cross-site"),
        pytest.param("POST", {"Sec-Fetch-Site": "Same-Origin"}, False, id="fetch-site-any-case"),
        pytest.param(
            "POST",
            {"Sec-Fetch-Site": "cross-site", "Origin": APP},
            True,
            id="fetch-site-wins-over-origin",
        ),
        pytest.param("POST", {"sec-fetch-site": "same-origin"}, False, id="lowercase-names"),
        pytest.param("POST", {"Origin": APP}, False, id="origin-exact"),
        pytest.param("POST", {"Origin": "https://BackOffice.test"}, False, id="origin-host-case"),
        pytest.param("POST", {"Origin": f"{APP}:443"}, False, id="origin-default-port"),
        pytest.param("POST", {"Origin": "http://backoffice.test"}, True, id="origin-http"),
        pytest.param("POST", {"Origin": f"{APP}:8443"}, True, id="origin-other-port"),
        pytest.param("POST", {"Origin": "https://evil.test"}, True, id="origin-other-host"),
        pytest.param(
            "POST", {"Origin": "https://sub.backoffice.test"}, True, id="origin-subdomain"
        ),
        pytest.param("POST", {"Origin": "null"}, True, id="origin-null"),
        pytest.param("POST", {"Origin": ""}, True, id="origin-empty"),
        pytest.param("POST", {}, True, id="no-headers"),
        pytest.param("POST", {"Referer": f"{APP}/"}, True, id="referer-is-not-enough"),
        pytest.param("post", {"Sec-Fetch-Site": "cross-site"}, True, id="method-any-case"),
        pytest.param("PUT", {"Sec-Fetch-Site": "cross-site"}, True, id="put"),
        pytest.param("DELETE", {"Origin": "https://evil.test"}, True, id="delete"),
        pytest.param("PATCH", {"Sec-Fetch-Site": "same-origin"}, False, id="patch-same-origin"),
        pytest.param(None, {"Sec-Fetch-Site": "cross-site"}, True, id="method-none-is-unsafe"),
        pytest.param(b"GET", {"Sec-Fetch-Site": "cross-site"}, True, id="method-bytes-is-unsafe"),
        pytest.param("GET" * 1000, {"Origin": APP}, False, id="method-long-is-unsafe"),
        pytest.param("POST", {"Origin": [APP]}, True, id="origin-list-is-absent"),
        pytest.param("POST", {"Origin": APP + "/" * 5000}, True, id="origin-too-long"),
        pytest.param("POST", {"Sec-Fetch-Site": None, "Origin": APP}, False, id="site-none"),
        pytest.param("POST", {"Origin": "https://backoffice.test\ud800"}, True, id="surrogate"),
        pytest.param("POST", {b"Origin": APP}, True, id="name-bytes-is-absent"),
    ],
)
def test_cross_origin_refused(method, headers, refused):
    auth = Auth(MemoryStore(), redirect_uri=f"{APP}/auth/callback")
    assert auth.sessions.cross_origin_refused(method, headers) is refused


@pytest.mark.parametrize(
    ("redirect_uri", "origin", "refused"),
    [
        pytest.param("http://127.0.0.1:8000/cb", "http://127.0.0.1:8000", False, id="loopback"),
        pytest.param("http://127.0.0.1:8000/cb", "http://localhost:8000", True, id="other-name"),
        pytest.param("http://[::1]:8000/cb", "http://[::1]:8000", False, id="ipv6"),
        pytest.param("http://app.test/cb", "http://app.test:80", False, id="http-default-port"),
        pytest.param("https://app.test:8443/cb", "https://app.test:8443", False, id="own-port"),
    ],
)
def test_the_apps_origin_comes_from_its_redirect_uri(redirect_uri, origin, refused):
    auth = Auth(MemoryStore(), redirect_uri=redirect_uri)
    assert auth.sessions.cross_origin_refused("POST", {"Origin": origin}) is refused


def test_the_cross_origin_check_needs_the_apps_origin():
    with pytest.raises(ConfigurationError) as caught:
        Auth(MemoryStore()).sessions.cross_origin_refused("POST", {"Sec-Fetch-Site": "same-origin"})
    assert "redirect_uri" in caught.value.detail
