"""Single-use guards: first use wins, purposes apart, expiry, races, shared instances."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from bpart_auth import ConfigurationError, InvalidInput, MemoryStore, StoreUnavailable
from bpart_auth._single_use import MemoryGuard, RedisGuard, SingleUseGuard, StoreGuard
from bpart_auth.store.sql import SQLStore

START = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
LATER = START + timedelta(minutes=10)


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def sql_store(tmp_path):
    return SQLStore(f"sqlite:///{tmp_path}/a.db", create_schema=True)


def redis_guard(request, clock):
    client = request.getfixturevalue("redis_client")
    return RedisGuard(client, prefix=request.getfixturevalue("redis_prefix"), clock=clock)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        "store-memory",
        "store-sql",
    ]
)
def guard(request, clock):
    if request.param == "memory":
        return MemoryGuard(clock=clock)
    if request.param == "redis":
        return redis_guard(request, clock)
    if request.param == "store-memory":
        return StoreGuard(MemoryStore(), clock=clock)
    return StoreGuard(request.getfixturevalue("sql_store"), clock=clock)


def test_every_guard_implements_the_protocol(guard):
    assert isinstance(guard, SingleUseGuard)


def test_first_use_is_true_then_false(guard):
    assert guard.consume(purpose="flow_state", key="k1", expires_at=LATER) is True
    assert guard.consume(purpose="flow_state", key="k1", expires_at=LATER) is False
    assert guard.consume(purpose="flow_state", key="k1", expires_at=LATER) is False


def test_keys_and_purposes_do_not_collide(guard):
    assert guard.consume(purpose="flow_state", key="k1", expires_at=LATER)
    assert guard.consume(purpose="flow_state", key="k2", expires_at=LATER)
    assert guard.consume(purpose="invite", key="k1", expires_at=LATER)
    # A separator inside purpose or key cannot make two pairs meet.
    assert guard.consume(purpose="a:b", key="c", expires_at=LATER)
    assert guard.consume(purpose="a", key="b:c", expires_at=LATER)
    assert not guard.consume(purpose="invite", key="k1", expires_at=LATER)


def test_a_key_is_refused_until_it_expires_then_forgotten(guard, clock):
    soon = START + timedelta(seconds=30)
    assert guard.consume(purpose="flow_state", key="k1", expires_at=soon)
    clock.advance(seconds=29)
    assert not guard.consume(purpose="flow_state", key="k1", expires_at=soon)
    clock.advance(seconds=2)
    if isinstance(guard, RedisGuard):
        # Redis expires by its own clock; take the key out as its TTL would.
        guard._client.delete(*guard._client.keys(f"{guard.prefix}*"))
    assert guard.consume(purpose="flow_state", key="k1", expires_at=clock.now + timedelta(1))


def test_a_key_already_past_its_expiry_is_refused_and_not_recorded(guard, clock):
    assert guard.consume(purpose="flow_state", key="dead", expires_at=START) is False
    assert guard.consume(purpose="flow_state", key="dead", expires_at=LATER) is True


def test_concurrent_consumers_of_one_key_get_exactly_one_true(guard):
    results = []
    barrier = threading.Barrier(50)

    def consume():
        barrier.wait()
        results.append(guard.consume(purpose="flow_state", key="race", expires_at=LATER))

    threads = [threading.Thread(target=consume) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 49 + [True]


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        pytest.param({"purpose": ""}, "purpose", id="empty-purpose"),
        pytest.param({"key": ""}, "key", id="empty-key"),
        pytest.param({"key": 7}, "key", id="key-not-str"),
        pytest.param({"expires_at": LATER.replace(tzinfo=None)}, "expires_at", id="naive"),
    ],
)
def test_bad_arguments_are_invalid_input(guard, arguments, field):
    values = {"purpose": "flow_state", "key": "k", "expires_at": LATER} | arguments
    with pytest.raises(InvalidInput) as caught:
        guard.consume(**values)
    assert caught.value.field == field


def test_memory_guard_forgets_expired_keys(clock):
    guard = MemoryGuard(clock=clock)
    for number in range(100):
        guard.consume(purpose="p", key=str(number), expires_at=START + timedelta(seconds=1))
    assert len(guard) == 100
    clock.advance(seconds=2)
    for number in range(64):
        guard.consume(purpose="q", key=str(number), expires_at=LATER)
    assert len(guard) == 64


def test_memory_guard_keeps_a_key_reused_after_expiry_until_its_new_expiry(clock):
    guard = MemoryGuard(clock=clock)
    assert guard.consume(purpose="p", key="k", expires_at=START + timedelta(seconds=1))
    clock.advance(seconds=2)
    assert guard.consume(purpose="p", key="k", expires_at=LATER)
    guard._sweep(clock.now)  # the first entry's expiry must not drop the second use
    assert not guard.consume(purpose="p", key="k", expires_at=LATER)


@pytest.mark.redis
def test_two_redis_guards_on_the_same_prefix_share_keys(redis_client, redis_prefix, clock):
    first = RedisGuard(redis_client, prefix=redis_prefix, clock=clock)
    second = RedisGuard(redis_client, prefix=redis_prefix, clock=clock)
    assert first.consume(purpose="flow_state", key="shared", expires_at=LATER)
    assert not second.consume(purpose="flow_state", key="shared", expires_at=LATER)
    other = RedisGuard(redis_client, prefix=redis_prefix + "other:", clock=clock)
    assert other.consume(purpose="flow_state", key="shared", expires_at=LATER)


@pytest.mark.redis
def test_redis_guard_sets_a_ttl_and_stores_no_raw_key(redis_client, redis_prefix, clock):
    guard = RedisGuard(redis_client, prefix=redis_prefix, clock=clock)
    guard.consume(purpose="flow_state", key="raw-state-value", expires_at=LATER)
    (name,) = redis_client.keys(f"{redis_prefix}*")
    assert b"raw-state-value" not in name
    assert name.startswith(f"{redis_prefix}flow_state:".encode())
    assert 590_000 < redis_client.pttl(name) <= 600_000


def test_redis_guard_from_a_url_fails_closed_when_redis_is_down(clock):
    pytest.importorskip("redis")
    guard = RedisGuard("redis://127.0.0.1:1/0", timeout=0.2, clock=clock)
    with pytest.raises(StoreUnavailable) as caught:
        guard.consume(purpose="flow_state", key="k", expires_at=LATER)
    assert caught.value.code == "store_unavailable"
    assert "Redis" in caught.value.detail


@pytest.mark.parametrize(
    ("client", "options"),
    [
        pytest.param("not a url", {}, id="bad-url"),
        pytest.param(object(), {}, id="not-a-client"),
        pytest.param("redis://127.0.0.1:6379/0", {"prefix": ""}, id="empty-prefix"),
        pytest.param("redis://127.0.0.1:6379/0", {"clock": "now"}, id="clock-not-callable"),
    ],
)
def test_redis_guard_configuration_errors(client, options):
    pytest.importorskip("redis")
    with pytest.raises(ConfigurationError):
        RedisGuard(client, **options)


def test_store_guard_needs_consume_once():
    with pytest.raises(ConfigurationError) as caught:
        StoreGuard(object())
    assert "consume_once" in caught.value.detail


def test_store_guard_passes_the_clock_as_now(clock):
    calls = []

    class Recorder:
        def consume_once(self, *, purpose, key, expires_at, now):
            calls.append((purpose, key, expires_at, now))
            return True

    assert StoreGuard(Recorder(), clock=clock).consume(purpose="p", key="k", expires_at=LATER)
    assert calls == [("p", "k", LATER, START)]


def test_store_guard_lets_store_unavailable_through(clock):
    class Down:
        def consume_once(self, **_):
            raise StoreUnavailable(detail="database is down")

    with pytest.raises(StoreUnavailable):
        StoreGuard(Down(), clock=clock).consume(purpose="p", key="k", expires_at=LATER)


def test_store_guard_over_two_sql_stores_on_one_file_shares_keys(tmp_path, clock):
    url = f"sqlite:///{tmp_path}/shared.db"
    first = StoreGuard(SQLStore(url, create_schema=True), clock=clock)
    second = StoreGuard(SQLStore(url, create_schema=True), clock=clock)
    assert first.consume(purpose="flow_state", key="k", expires_at=LATER)
    assert not second.consume(purpose="flow_state", key="k", expires_at=LATER)


@pytest.mark.redis
def test_redis_forgets_a_key_when_it_expires(redis_client, redis_prefix):
    guard = RedisGuard(redis_client, prefix=redis_prefix)
    soon = datetime.now(timezone.utc) + timedelta(milliseconds=100)
    assert guard.consume(purpose="flow_state", key="k", expires_at=soon)
    assert not guard.consume(purpose="flow_state", key="k", expires_at=soon)
    time.sleep(0.15)
    assert guard.consume(purpose="flow_state", key="k", expires_at=soon + timedelta(seconds=9))
