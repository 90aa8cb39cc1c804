"""The webhook signature: HMAC-SHA256 over the timestamp and the body, and its verifier for receivers.

Every delivery carries ``X-Lorareg-Timestamp: <unix seconds>`` and ``X-Lorareg-Signature: v1=<hex>`` where
the hex is ``HMAC-SHA256(secret, "<timestamp>." + body)``. Signing the timestamp with the body lets a
receiver refuse a replay: a captured delivery re-sent later carries an old timestamp, and changing it breaks
the signature. Receivers should (1) recompute the HMAC over the raw body bytes and compare in constant
time, (2) refuse a timestamp more than :data:`DEFAULT_TOLERANCE_S` away from their clock, and (3) remember
``X-Lorareg-Delivery`` ids inside that window to drop duplicates (delivery is at-least-once).

Pure: no I/O, no clock of its own (``now`` is passed in).
"""

from __future__ import annotations

import hashlib
import hmac

from lorareg.errors import VerificationError

SIGNATURE_HEADER = "X-Lorareg-Signature"
TIMESTAMP_HEADER = "X-Lorareg-Timestamp"
EVENT_HEADER = "X-Lorareg-Event"
DELIVERY_HEADER = "X-Lorareg-Delivery"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300  # a delivery older or newer than 5 minutes is refused as a replay


def sign_webhook(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Lorareg-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode("utf-8"), str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return f"{SCHEME}={mac.hexdigest()}"


def verify_webhook(
    secret: str,
    *,
    signature: str,
    timestamp: str,
    body: bytes,
    now: float,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> None:
    """Check a received delivery (what a receiver runs; lorareg's tests run it too).

    Raises:
        VerificationError: a malformed or stale timestamp ("replay"), or a signature that does not match.
    """
    if not timestamp.isdigit():
        raise VerificationError([f"webhook timestamp {timestamp[:20]!r} is not unix seconds"])
    if abs(now - int(timestamp)) > tolerance_s:
        raise VerificationError([f"replay: webhook timestamp {timestamp} is over {tolerance_s}s from now"])
    expected = sign_webhook(secret, int(timestamp), body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise VerificationError(
            ["bad signature: the webhook signature does not match the body and timestamp"]
        )
