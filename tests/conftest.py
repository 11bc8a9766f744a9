"""Shared test set-up: services are required under CI and optional elsewhere."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(name: str, reason: str) -> None:
    """Skip the test on a developer machine, fail it under CI, when a service is absent.

    Under CI every service must be there (`.ci/run` starts them), so a skip there
    would hide a broken set-up.
    """
    message = f"{name} is not available: {reason}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: services are required, not skipped)")
    pytest.skip(message)
