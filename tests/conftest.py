"""Shared fixtures: factories for adapters, keys and servers. Service fixtures honour
``LORAREG_REQUIRE_SERVICES=1`` (set by ``.ci/run``): a service that cannot start fails instead of skipping."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.fixtures.services import skip_or_fail  # noqa: E402,F401  (lives there; re-exported here)

# Fixture plugins, one module per concern (adapters, keys, external services, live lorareg servers).
pytest_plugins = [
    "tests.fixtures.adapters",
    "tests.fixtures.keys",
    "tests.fixtures.signed_files",
    "tests.fixtures.services",
    "tests.fixtures.server",
    "tests.fixtures.registry",
    "tests.fixtures.deployments",
    "tests.fixtures.web",
    "tests.fixtures.nginx",
]
