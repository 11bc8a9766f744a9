"""FakeGoogle and FakeMicrosoft nest: with each other and with an app's own `responses`.

Each test runs a real flow through `Auth` (discovery, token exchange, keys) against
the fakes, with `responses` mocks of an app's own started before or after, in every
order, and checks that leaving one `with` breaks nothing still open.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import pytest
import requests
import responses

from bpart_auth import Auth, AuthError, ConfigurationError, MemoryStore
from bpart_auth.testing import CHEAP_FOR_TESTS, FakeGoogle, FakeMicrosoft

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SECRET = "a test secret key, 32 bytes long!"
CALLBACK = "https://app.test/auth/callback"
APP_API = "https://api.app.test/ping"


def google_signs_in(google: FakeGoogle) -> None:
    """A full Google sign-in through the fake (discovery, token, keys)."""
    auth = Auth(
        MemoryStore(),
        secret_key=SECRET,
        providers=[google.provider()],
        redirect_uri=CALLBACK,
        password_hashing=CHEAP_FOR_TESTS,
    )
    ann = auth.create_account(email="ann@example.com")
    session: dict[str, object] = {}
    start = auth.begin_sign_in("google", session=session)
    outcome = auth.complete(google.authorize(start.url, email="ann@example.com"), session=session)
    assert (outcome.kind, outcome.account.id) == ("signed_in", ann.id)


def microsoft_signs_in(microsoft: FakeMicrosoft) -> None:
    """A full Microsoft registration through the fake, by invitation."""
    auth = Auth(
        MemoryStore(),
        secret_key=SECRET,
        providers=[microsoft.provider()],
        redirect_uri=CALLBACK,
        password_hashing=CHEAP_FOR_TESTS,
    )
    boss = auth.create_account(email="boss@example.com")
    _, token = auth.invites.create("ann@contoso.example", invited_by=boss.id)
    session: dict[str, object] = {}
    start = auth.invites.begin_accept("microsoft", token, session=session)
    outcome = auth.complete(microsoft.authorize(start.url), session=session)
    assert outcome.kind == "registered"


def app_mock_answers() -> None:
    """The app's own `responses` route answers."""
    assert requests.get(APP_API, timeout=5).json() == {"pong": True}


@contextlib.contextmanager
def app_mock() -> Iterator[responses.RequestsMock]:
    """An app's own mock, strict (every route it adds must be called)."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        mock.add(responses.GET, APP_API, json={"pong": True})
        yield mock


def test_google_then_microsoft_and_the_reverse() -> None:
    with FakeGoogle() as google, FakeMicrosoft() as microsoft:
        google_signs_in(google)
        microsoft_signs_in(microsoft)
    with FakeMicrosoft() as microsoft, FakeGoogle() as google:
        google_signs_in(google)
        microsoft_signs_in(microsoft)


@pytest.mark.parametrize("outer", ["google", "microsoft"])
def test_leaving_the_inner_fake_keeps_the_outer_one(outer: str) -> None:
    if outer == "google":
        with FakeGoogle() as google:
            with FakeMicrosoft() as microsoft:
                microsoft_signs_in(microsoft)
            google_signs_in(google)
    else:
        with FakeMicrosoft() as microsoft:
            with FakeGoogle() as google:
                google_signs_in(google)
            microsoft_signs_in(microsoft)


def test_fakes_may_be_left_out_of_order() -> None:
    google, microsoft = FakeGoogle(), FakeMicrosoft()
    google.__enter__()
    microsoft.__enter__()
    google.__exit__(None, None, None)
    microsoft_signs_in(microsoft)
    microsoft.__exit__(None, None, None)


def test_app_mock_started_before_the_fakes() -> None:
    with app_mock():
        with FakeGoogle() as google, FakeMicrosoft() as microsoft:
            google_signs_in(google)
            microsoft_signs_in(microsoft)
            app_mock_answers()
        app_mock_answers()  # leaving the fakes left the app's mock in place


def test_app_mock_started_inside_the_fakes() -> None:
    with FakeGoogle() as google, FakeMicrosoft() as microsoft:
        with app_mock():
            google_signs_in(google)
            microsoft_signs_in(microsoft)
            app_mock_answers()
        google_signs_in(google)  # leaving the app's mock left the fakes in place
        microsoft_signs_in(microsoft)


def test_app_mock_between_the_fakes() -> None:
    with FakeGoogle() as google:
        with app_mock():
            with FakeMicrosoft() as microsoft:
                microsoft_signs_in(microsoft)
                google_signs_in(google)
            app_mock_answers()
        google_signs_in(google)


def test_app_mock_left_before_the_fake_it_was_opened_around() -> None:
    mock = responses.RequestsMock(assert_all_requests_are_fired=False)
    mock.start()
    with FakeGoogle() as google:
        mock.stop()
        google_signs_in(google)


@responses.activate
def test_inside_responses_activate() -> None:
    responses.add(responses.GET, APP_API, json={"pong": True})
    with FakeGoogle() as google, FakeMicrosoft() as microsoft:
        google_signs_in(google)
        microsoft_signs_in(microsoft)
        app_mock_answers()
    app_mock_answers()


def test_responses_activate_inside_a_fake() -> None:
    with FakeGoogle() as google:

        @responses.activate
        def app_test() -> None:
            responses.add(responses.GET, APP_API, json={"pong": True})
            google_signs_in(google)
            app_mock_answers()

        app_test()
        google_signs_in(google)


@pytest.mark.parametrize("start_first", [True, False])
def test_the_default_mock_started_by_hand(start_first: bool) -> None:  # noqa: FBT001
    fake = FakeMicrosoft()
    try:
        if start_first:
            responses.start()
            fake.__enter__()
        else:
            fake.__enter__()
            responses.start()
        responses.add(responses.GET, APP_API, json={"pong": True})
        microsoft_signs_in(fake)
        app_mock_answers()
    finally:
        fake.__exit__(None, None, None)
        responses.stop()
        responses.reset()


def test_an_app_mock_sees_its_own_requests_only() -> None:
    with app_mock() as mock, FakeGoogle() as google:
        google_signs_in(google)
        app_mock_answers()
        assert [call.request.url for call in mock.calls] == [APP_API]
    assert google.requests_seen  # the fake served discovery, token and keys


def test_the_last_of_two_same_fakes_answers_until_left() -> None:
    with FakeGoogle() as outer:
        with FakeGoogle() as inner:
            google_signs_in(inner)
            with pytest.raises(AuthError):  # the outer fake's code is unknown to the inner
                google_signs_in(outer)
        google_signs_in(outer)


def test_after_every_fake_is_left_nothing_answers_for_them() -> None:
    original: Callable[..., object] = requests.Session.get_adapter
    with FakeGoogle() as google, FakeMicrosoft():
        assert requests.Session.get_adapter is not original
        metadata = google.metadata_url
    assert requests.Session.get_adapter is original
    with responses.RequestsMock(), pytest.raises(requests.ConnectionError):
        requests.get(metadata, timeout=5)  # the fake is gone: responses refuses it


def test_a_fake_is_entered_once_at_a_time() -> None:
    with FakeGoogle() as google, pytest.raises(ConfigurationError):
        google.__enter__()


def test_install_into_an_app_mock_still_works() -> None:
    google = FakeGoogle()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        google.install(mock)
        google_signs_in(google)
        assert any(call.request.url == google.metadata_url for call in mock.calls)
