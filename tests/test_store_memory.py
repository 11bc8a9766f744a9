"""MemoryStore passes the store contract kit and the second-factor one, races included."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bpart_auth import MemoryStore
from bpart_auth.store import AccountStore
from bpart_auth.store.base import SecondFactorRecords
from bpart_auth.testing import StoreContract
from bpart_auth.testing.store_contract import NOW, SecondFactorContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self):
        return MemoryStore()


def test_memory_store_satisfies_the_protocol():
    assert isinstance(MemoryStore(), AccountStore)


def test_memory_stores_do_not_share_state():
    first, second = MemoryStore(), MemoryStore()
    first.create_account(email="ann@example.com", name="", password_hash=None, now=NOW)
    assert second.find_account_by_email("ann@example.com") is None


class TestMemoryStoreSecondFactors(SecondFactorContract):
    @pytest.fixture
    def store(self):
        return MemoryStore()


def test_memory_store_keeps_second_factors():
    assert isinstance(MemoryStore(), SecondFactorRecords)


def test_consume_once_forgets_expired_keys_and_touches_only_those():
    store = MemoryStore()
    soon, later = NOW + timedelta(minutes=1), NOW + timedelta(hours=1)
    for number in range(1000):
        assert store.consume_once(purpose="p", key=f"short{number}", expires_at=soon, now=NOW)
    for number in range(1000):
        assert store.consume_once(purpose="p", key=f"long{number}", expires_at=later, now=NOW)
    # Past the short keys' expiry, the next call forgets all of them at once...
    past = soon + timedelta(seconds=1)
    assert store.consume_once(purpose="p", key="new", expires_at=later, now=past)
    assert len(store._used_once) == 1001
    # ...and a short key may be used again; a long one still may not.
    assert store.consume_once(purpose="p", key="short7", expires_at=later, now=past)
    assert not store.consume_once(purpose="p", key="long7", expires_at=later, now=past)


def test_consume_once_reused_key_survives_its_first_expiry():
    store = MemoryStore()
    first, second = NOW + timedelta(minutes=1), NOW + timedelta(minutes=10)
    assert store.consume_once(purpose="p", key="k", expires_at=first, now=NOW)
    after = first + timedelta(seconds=1)
    assert store.consume_once(purpose="p", key="k", expires_at=second, now=after)
    # The stale record of the first use must not make the second one forgotten.
    assert not store.consume_once(purpose="p", key="k", expires_at=second, now=after)
    assert not store.consume_once(
        purpose="p", key="k", expires_at=second, now=second - timedelta(seconds=1)
    )
