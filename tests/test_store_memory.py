"""MemoryStore passes the store contract kit and the second-factor one, races included."""

from __future__ import annotations

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
