"""Throttling failed sign-ins: the policy on both backends, Redis sharing, concurrency."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta

import pytest

from bpart_auth import (
    Auth,
    ConfigurationError,
    InvalidCredentials,
    InvalidInput,
    MemoryStore,
    StoreUnavailable,
    TooManyAttempts,
)
from bpart_auth._throttle import (
    FailureLimit,
    MemoryThrottle,
    RedisThrottle,
    Throttle,
    ThrottleBackend,
)
from bpart_auth.store._sql_throttle import SQLThrottle
from bpart_auth.testing import CHEAP_FOR_TESTS
from conftest import REDIS_URL

START = 1_700_000_000.0
ANN = "ann@example.com"
HOME = "203.0.113.9"
OFFICE = "198.51.100.7"
FIVE_PER_15_MIN = FailureLimit(failures=5, window=timedelta(minutes=15))


class Clock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
    ]
)
def backend(request):
    if request.param == "memory":
        return MemoryThrottle()
    if request.param in {"sqlite", "postgresql"}:
        database = request.getfixturevalue(f"{request.param}_db")
        return SQLThrottle(database.store(create_schema=True))
    client = request.getfixturevalue("redis_client")
    return RedisThrottle(client, prefix=request.getfixturevalue("redis_prefix"))


@pytest.fixture
def throttle(backend, clock):
    return Throttle(backend=backend, clock=clock)


def fail(throttle, times, *, email=ANN, client_address=HOME):
    for _ in range(times):
        throttle.failed(email=email, client_address=client_address)


def retry_after(throttle, *, email=ANN, client_address=HOME):
    """The wait `check` demands, or None when the attempt may go ahead."""
    try:
        throttle.check(email=email, client_address=client_address)
    except TooManyAttempts as error:
        return error.retry_after
    return None


# The account limit


def test_under_the_limit_passes(throttle):
    fail(throttle, 4)
    assert retry_after(throttle) is None


def test_the_limit_throttles_with_the_wait_from_the_clock(throttle, clock):
    for _ in range(5):
        throttle.failed(email=ANN, client_address=HOME)
        clock.advance(10)
    # The first failure, at START, leaves the 15-minute window at START + 900.
    with pytest.raises(TooManyAttempts) as caught:
        throttle.check(email=ANN, client_address=HOME)
    assert caught.value.code == "too_many_attempts"
    assert caught.value.retry_after == pytest.approx(900 - 50)
    assert str(caught.value) == "Too many failed attempts. Please try again in 15 minutes."
    clock.advance(800)
    assert retry_after(throttle) == pytest.approx(50)


def test_the_window_expiry_frees_the_account(throttle, clock):
    fail(throttle, 5)
    clock.advance(899.5)
    assert retry_after(throttle) == pytest.approx(0.5)
    clock.advance(0.5)
    assert retry_after(throttle) is None


def test_the_window_slides(throttle, clock):
    throttle.failed(email=ANN, client_address=HOME)
    clock.advance(300)
    fail(throttle, 4)
    clock.advance(600)  # the first failure has left the window, four remain
    assert retry_after(throttle) is None
    throttle.failed(email=ANN, client_address=HOME)
    assert retry_after(throttle) == pytest.approx(300)  # until the four at START + 300 leave


def test_a_throttled_check_counts_nothing(throttle, clock):
    fail(throttle, 5)
    for _ in range(50):
        assert retry_after(throttle) is not None
    clock.advance(900)
    assert retry_after(throttle) is None


def test_the_account_is_the_normalised_email(throttle):
    fail(throttle, 3, email="Ann@Example.COM")
    fail(throttle, 2, email="  ann@example.com ")
    assert retry_after(throttle, email="ANN@EXAMPLE.COM") is not None
    assert retry_after(throttle, email="bob@example.com") is None


def test_a_malformed_email_is_throttled_too(throttle):
    fail(throttle, 5, email="not an email")
    assert retry_after(throttle, email="NOT AN EMAIL") is not None


# Emails the throttle cannot even normalise: bounded first, then counted all the same.
UNBOUNDED = [
    pytest.param("a" * 1_000_000 + "@example.com", id="one-megabyte"),
    pytest.param("a" + "\u0301" * 32_768 + "\u0316" * 32_768 + "@example.com", id="nfc-bomb"),
    pytest.param("ann\ud800@example.com", id="lone-surrogate"),
    pytest.param(b"ann@example.com", id="bytes"),
    pytest.param(None, id="none"),
]


@pytest.mark.parametrize("email", UNBOUNDED)
def test_an_unbounded_email_is_throttled_under_a_stable_key(throttle, email):
    fail(throttle, 4, email=email, client_address=None)
    assert retry_after(throttle, email=email, client_address=None) is None
    fail(throttle, 1, email=email, client_address=None)
    assert retry_after(throttle, email=email, client_address=None) is not None
    assert retry_after(throttle, email=ANN, client_address=None) is None
    throttle.succeeded(email=email)
    assert retry_after(throttle, email=email, client_address=None) is None


def test_an_unbounded_email_still_counts_for_its_client_address(backend, clock):
    throttle = Throttle(
        backend=backend,
        per_account=FailureLimit(failures=1_000, window=timedelta(minutes=15)),
        per_address=FailureLimit(failures=3, window=timedelta(minutes=15)),
        clock=clock,
    )
    fail(throttle, 3, email="x" * 100_000)
    assert retry_after(throttle, email=ANN) is not None
    assert retry_after(throttle, email=ANN, client_address=OFFICE) is None


def test_the_account_limit_holds_across_addresses(throttle):
    for number in range(5):
        throttle.failed(email=ANN, client_address=f"192.0.2.{number}")
    assert retry_after(throttle, client_address="192.0.2.200") is not None
    assert retry_after(throttle, client_address=None) is not None


# The address limit


def test_the_address_limit_is_independent_of_the_account_limit(backend, clock):
    throttle = Throttle(
        backend=backend,
        per_account=FIVE_PER_15_MIN,
        per_address=FailureLimit(failures=3, window=timedelta(minutes=15)),
        clock=clock,
    )
    for name in ("ann", "bob", "cat"):
        throttle.failed(email=f"{name}@example.com", client_address=HOME)
    # A fourth account from the same address is refused...
    assert retry_after(throttle, email="dan@example.com", client_address=HOME) == 900
    # ...while each account is far under its own limit, from anywhere else.
    assert retry_after(throttle, email="ann@example.com", client_address=OFFICE) is None
    assert retry_after(throttle, email="dan@example.com", client_address=None) is None


def test_the_longer_wait_wins(backend, clock):
    throttle = Throttle(
        backend=backend,
        per_account=FailureLimit(failures=1, window=timedelta(minutes=5)),
        per_address=FailureLimit(failures=1, window=timedelta(minutes=60)),
        clock=clock,
    )
    throttle.failed(email=ANN, client_address=HOME)
    assert retry_after(throttle) == pytest.approx(3600)
    assert retry_after(throttle, client_address=OFFICE) == pytest.approx(300)


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        pytest.param("2001:db8::1", "2001:db8::ffff:2", True, id="ipv6-same-64"),
        pytest.param("2001:db8::1", "2001:db8:0:1::1", False, id="ipv6-other-64"),
        pytest.param("::ffff:203.0.113.9", "203.0.113.9", True, id="ipv4-mapped"),
        pytest.param("203.0.113.9", "203.0.113.10", False, id="ipv4-neighbours"),
        pytest.param(" 203.0.113.9 ", "203.0.113.9", True, id="white-space"),
        pytest.param("testclient", "testclient", True, id="not-an-ip"),
    ],
)
def test_which_addresses_count_together(clock, first, second, shared):
    throttle = Throttle(
        per_address=FailureLimit(failures=2, window=timedelta(minutes=15)), clock=clock
    )
    throttle.failed(email="ann@example.com", client_address=first)
    throttle.failed(email="bob@example.com", client_address=first)
    throttled = retry_after(throttle, email="cat@example.com", client_address=second) is not None
    assert throttled is shared


@pytest.mark.parametrize(
    "address",
    [
        pytest.param("203.0.113.9, " * 100_000, id="one-megabyte-header"),
        pytest.param("203.0.113.9\ud800", id="lone-surrogate"),
    ],
)
def test_an_unbounded_client_address_is_throttled_under_one_key(clock, address):
    throttle = Throttle(
        per_address=FailureLimit(failures=2, window=timedelta(minutes=15)), clock=clock
    )
    throttle.failed(email="ann@example.com", client_address=address)
    throttle.failed(email="bob@example.com", client_address=address + " ")
    assert retry_after(throttle, email="cat@example.com", client_address=address) is not None
    assert retry_after(throttle, email="cat@example.com", client_address=HOME) is None


@pytest.mark.parametrize("bad", [pytest.param("", id="empty"), pytest.param("  ", id="blank")])
def test_an_empty_client_address_is_invalid_input(throttle, bad):
    with pytest.raises(InvalidInput) as caught:
        throttle.check(email=ANN, client_address=bad)
    assert caught.value.field == "client_address"


# Success


def test_success_resets_the_account_but_not_the_address(backend, clock):
    throttle = Throttle(
        backend=backend,
        per_account=FIVE_PER_15_MIN,
        per_address=FailureLimit(failures=6, window=timedelta(minutes=15)),
        clock=clock,
    )
    fail(throttle, 5)
    assert retry_after(throttle) is not None
    throttle.succeeded(email="ANN@example.com", client_address=HOME)
    assert retry_after(throttle, client_address=OFFICE) is None
    # The address keeps its five failures: one more from it throttles it.
    throttle.failed(email="bob@example.com", client_address=HOME)
    assert retry_after(throttle, email="cat@example.com", client_address=HOME) is not None


def test_success_of_one_account_leaves_others_alone(throttle):
    fail(throttle, 5, email="bob@example.com")
    throttle.succeeded(email=ANN, client_address=HOME)
    assert retry_after(throttle, email="bob@example.com") is not None


# Concurrency and sharing


@pytest.mark.parametrize("failures", [20, 21])
def test_concurrent_failures_count_exactly(backend, clock, failures):
    throttle = Throttle(
        backend=backend,
        per_account=FailureLimit(failures=failures, window=timedelta(minutes=15)),
        per_address=FailureLimit(failures=1000, window=timedelta(minutes=15)),
        clock=clock,  # every thread records at the same instant
    )
    barrier = threading.Barrier(20)
    errors = []

    def guess():
        barrier.wait()
        try:
            throttle.failed(email=ANN, client_address=HOME)
        except Exception as exc:  # noqa: BLE001 - reported by the assert below
            errors.append(exc)

    threads = [threading.Thread(target=guess) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # 20 recorded failures throttle at a limit of 20 and not at 21.
    assert (retry_after(throttle) is not None) is (failures == 20)


@pytest.mark.redis
def test_two_app_instances_share_the_limit(redis_client, redis_prefix, clock):
    first = Throttle(backend=RedisThrottle(REDIS_URL, prefix=redis_prefix), clock=clock)
    second = Throttle(backend=RedisThrottle(redis_client, prefix=redis_prefix), clock=clock)
    fail(first, 3)
    fail(second, 2)
    assert retry_after(first) == pytest.approx(900)
    assert retry_after(second) == pytest.approx(900)
    second.succeeded(email=ANN)
    assert retry_after(first) is None


@pytest.mark.redis
def test_redis_keys_are_prefixed_expiring_and_hold_no_email(redis_client, redis_prefix, clock):
    throttle = Throttle(backend=RedisThrottle(redis_client, prefix=redis_prefix), clock=clock)
    fail(throttle, 7)
    keys = sorted(key.decode() for key in redis_client.scan_iter(match=f"{redis_prefix}*"))
    assert [key.removeprefix(redis_prefix).split(":")[0] for key in keys] == [
        "account",
        "address",
    ]
    assert not any("example" in key or "203.0" in key for key in keys)
    for key in keys:
        assert 0 < redis_client.pttl(key) <= 15 * 60 * 1000
    account_key = keys[0]
    assert redis_client.zcard(account_key) == 5  # only the newest `failures` are kept


@pytest.mark.redis
def test_redis_down_fails_closed(clock):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    throttle = Throttle(backend=RedisThrottle("redis://127.0.0.1:1/0", timeout=1), clock=clock)
    for attempt in (
        lambda: throttle.check(email=ANN, client_address=HOME),
        lambda: throttle.failed(email=ANN, client_address=HOME),
        lambda: throttle.succeeded(email=ANN),
    ):
        with pytest.raises(StoreUnavailable) as caught:
            attempt()
        assert caught.value.code == "store_unavailable"
        assert type(caught.value.__cause__).__module__.startswith("redis")


# The default of `Auth`: shared through the SQL store, in-process otherwise

PASSWORD = "correct horse battery staple"
WRONG = "a wrong password, long enough"


def app_instances(store):
    """Two `Auth` on one store, as two app processes would build them: no `throttle=`."""
    first, second = (Auth(store, password_hashing=CHEAP_FOR_TESTS) for _ in range(2))
    first.create_account(email=ANN, password=PASSWORD)
    return first, second


def test_two_app_instances_on_one_sql_store_share_the_limit_by_default(database):
    first, second = app_instances(database.store(create_schema=True))
    for instance in (first, second, first, second, first):
        with pytest.raises(InvalidCredentials):
            instance.passwords.sign_in(ANN, WRONG, client_address=HOME)
    for instance in (first, second):
        with pytest.raises(TooManyAttempts) as caught:
            instance.passwords.sign_in(ANN, PASSWORD, client_address=OFFICE)
        assert caught.value.code == "too_many_attempts"
        assert 0 < caught.value.retry_after <= 15 * 60


def test_a_sign_in_on_one_instance_clears_the_account_on_the_other(database):
    first, second = app_instances(database.store(create_schema=True))
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            first.passwords.sign_in(ANN, WRONG)
    assert second.passwords.sign_in(ANN, PASSWORD).email == ANN
    for _ in range(4):
        with pytest.raises(InvalidCredentials):
            first.passwords.sign_in(ANN, WRONG)
    assert second.passwords.sign_in(ANN, PASSWORD).email == ANN


def test_two_app_instances_on_a_memory_store_count_apart_by_default():
    # MemoryStore lives in one process: so does its default throttle.
    first, second = app_instances(MemoryStore())
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            first.passwords.sign_in(ANN, WRONG)
    with pytest.raises(TooManyAttempts):
        first.passwords.sign_in(ANN, PASSWORD)
    assert second.passwords.sign_in(ANN, PASSWORD).email == ANN


def test_a_throttle_given_to_auth_wins_over_the_stores(database, clock):
    store = database.store(create_schema=True)
    given = Throttle(backend=MemoryThrottle(), clock=clock)
    auth = Auth(store, password_hashing=CHEAP_FOR_TESTS, throttle=given)
    other = Auth(store, password_hashing=CHEAP_FOR_TESTS)
    auth.create_account(email=ANN, password=PASSWORD)
    for _ in range(5):
        with pytest.raises(InvalidCredentials):
            auth.passwords.sign_in(ANN, WRONG)
    assert retry_after(given, client_address=None) == pytest.approx(900)
    assert other.passwords.sign_in(ANN, PASSWORD).email == ANN


def test_memory_forgets_keys_whose_window_passed(clock):
    backend = MemoryThrottle()
    throttle = Throttle(backend=backend, clock=clock)
    for number in range(100):
        throttle.failed(email=f"user{number}@example.com", client_address=f"192.0.2.{number}")
    assert len(backend._failures) == 200
    clock.advance(901)
    throttle.failed(email=ANN, client_address=HOME)  # the next write sweeps
    assert len(backend._failures) == 2


def test_memory_throttles_do_not_share_counts(clock):
    first = Throttle(backend=MemoryThrottle(), clock=clock)
    second = Throttle(backend=MemoryThrottle(), clock=clock)
    fail(first, 5)
    assert retry_after(second) is None


# Configuration


def test_the_backends_satisfy_the_protocol():
    assert isinstance(MemoryThrottle(), ThrottleBackend)
    assert isinstance(RedisThrottle("redis://127.0.0.1:6379/0"), ThrottleBackend)


def test_the_defaults():
    throttle = Throttle()
    assert isinstance(throttle.backend, MemoryThrottle)
    assert throttle.per_account == FIVE_PER_15_MIN
    assert throttle.per_address == FailureLimit(failures=50, window=timedelta(minutes=15))


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda: FailureLimit(failures=0, window=timedelta(minutes=1)), id="zero"),
        pytest.param(lambda: FailureLimit(failures=True, window=timedelta(minutes=1)), id="bool"),
        pytest.param(lambda: FailureLimit(failures=5, window=900), id="window-int"),
        pytest.param(lambda: FailureLimit(failures=5, window=timedelta(0)), id="window-zero"),
        pytest.param(lambda: FailureLimit(failures=5, window=timedelta(days=8)), id="window-8d"),
        pytest.param(lambda: Throttle(backend=object()), id="not-a-backend"),
        pytest.param(lambda: Throttle(per_account=(5, 900)), id="limit-tuple"),
        pytest.param(lambda: Throttle(clock=START), id="clock-not-callable"),
        pytest.param(lambda: RedisThrottle(object()), id="redis-not-a-client"),
        pytest.param(lambda: RedisThrottle(REDIS_URL, prefix=""), id="redis-empty-prefix"),
        pytest.param(lambda: RedisThrottle("http://example.com"), id="redis-bad-url"),
    ],
)
def test_configuration_refused(make):
    with pytest.raises(ConfigurationError) as caught:
        make()
    assert caught.value.code == "configuration_error"
    assert caught.value.detail


def test_importing_the_module_does_not_import_redis():
    script = "import sys, bpart_auth._throttle, bpart_auth.passwords; print('redis' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
