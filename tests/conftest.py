"""Shared test set-up: services are required under CI and optional elsewhere."""

from __future__ import annotations

import os
import uuid

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("BPART_AUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def service_missing(name: str, reason: str) -> None:
    """Skip the test on a developer machine, fail it under CI, when a service is absent.

    Under CI every service must be there (`.ci/run` starts them), so a skip there
    would hide a broken set-up.
    """
    message = f"{name} is not available: {reason}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services are required, not skipped)")
    pytest.skip(message)


@pytest.fixture
def redis_client():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        service_missing("Redis", f"{REDIS_URL} does not answer ({exc})")
    yield client
    client.close()


@pytest.fixture
def redis_prefix(redis_client):
    prefix = f"bpart_auth_test:{uuid.uuid4().hex}:"
    yield prefix
    for key in redis_client.scan_iter(match=f"{prefix}*"):
        redis_client.delete(key)
