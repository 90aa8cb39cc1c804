"""Test-only crash points: ``LORAREG_FAULT=<point>`` makes the process SIGKILL itself at that point.

The crash-safety tests (``tests/test_crash_safety.py``) start ``lorareg serve`` with this variable and check
that after a restart nothing references a missing blob, no partial blob is visible and the publish can be
retried. A real ``kill -9`` at a chosen instant is the only honest way to test that: an exception would run
the very cleanup code whose absence is being tested.

Never set it in production: the process dies without a word. Unset (the default), every point is a no-op
costing one environment lookup. This is the one registry module that reads the environment, because the
point is to reach code paths the server settings have no business knowing about.
"""

from __future__ import annotations

import os
import signal

FAULT_VARIABLE = "LORAREG_FAULT"
MID_UPLOAD_BYTES = 9 * 2**20  # "mid-upload" fires once this much was written: past S3's first 8 MiB part
POINTS = (
    "mid-upload",  # the upload is streaming: a temp file / multipart upload exists, nothing is committed
    "after-blob-commit",  # the blob is under its content address, its database row is not written yet
    "during-countersign",  # publish: the registry signed the bundle, no row is written yet
    "before-rows-commit",  # publish: version, search and log rows are flushed, the transaction not committed
)
DELIVERY_POINTS = ("before-webhook-send",)  # a webhook delivery is claimed (committed), the POST not sent


def crash_point(name: str) -> None:
    """SIGKILL this process if ``LORAREG_FAULT`` names this point (test only; see the module docstring)."""
    known = POINTS + DELIVERY_POINTS
    if name not in known:
        raise ValueError(f"unknown crash point {name!r}; expected one of {', '.join(known)}")
    if os.environ.get(FAULT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
