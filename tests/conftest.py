"""Shared fixtures: factories for adapters, keys and servers. Service fixtures honour
``LORAREG_REQUIRE_SERVICES=1`` (set by ``.ci/run``): a service that cannot start fails instead of skipping."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def skip_or_fail(reason: str) -> None:
    """Skip when a service truly cannot start here; fail in CI, where every service must run."""
    if os.environ.get("LORAREG_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service unavailable: {reason}")
    pytest.skip(reason)

# Fixture plugins, one module per concern (adapters, keys, external services, live lorareg servers).
pytest_plugins = [
    "tests.fixtures.adapters",
    "tests.fixtures.keys",
    "tests.fixtures.services",
    "tests.fixtures.server",
]
