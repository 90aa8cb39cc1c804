"""Which revocation list a local check uses: the registry's current one, else the newest one the cache holds.

``lorareg verify`` and the loader (and any caller checking a file outside ``pull``) ask
:func:`current_revocations`, or :func:`revocations_from` when they already hold a ``Client``:

1. with a registry URL, its current list, fetched and verified (trusted registry key, rollback against the
   newest version held, freeze by ``expires`` and the policy's ``max_revocation_age``) and then kept in the
   client cache; when the registry cannot be reached, the list held for it, re-verified (a stale one is
   refused: an attacker who cuts the network must not turn revocation off);
2. without one, the newest held list signed by a trusted registry key, re-verified the same way;
3. none held, or no registry key in the trust file to verify a list with (a ``--key``-only check): the
   check goes on without revocations and says so (``source: "none"``), without contacting any registry.

The verification itself is :func:`lorareg.signing.revocation.verify_revocation_list`; storage is
:class:`lorareg.client.cache.BlobCache`. Nothing here reads adapter files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lorareg.client.cache import BlobCache
from lorareg.errors import RemoteError, VerificationError

if TYPE_CHECKING:
    from lorareg.client.api_client import Client
    from lorareg.signing.revocation import RevocationList
    from lorareg.signing.trust import TrustStore

SOURCES = ("registry", "cache", "none")


@dataclass(frozen=True, slots=True)
class CheckedRevocations:
    """The verified list a check used (None: none was available), where it came from, and why."""

    revocations: RevocationList | None
    source: str  # one of SOURCES
    registry: str | None = None  # the registry URL, when one was named
    note: str | None = None  # said to the user: an offline fallback, or that nothing was checked

    def revoked(self) -> dict[str, str]:
        """Revoked digest -> public reason (empty when no list was available)."""
        if self.revocations is None:
            return {}
        return {entry.sha256: entry.reason for entry in self.revocations.revoked}

    def to_json(self) -> dict[str, Any]:
        """``{"version", "issued", "expires", "source", "registry"}``; times RFC 3339, null without a list."""
        from lorareg.signing.revocation import format_time

        rl = self.revocations
        return {
            "version": rl.version if rl is not None else None,
            "issued": format_time(rl.issued) if rl is not None else None,
            "expires": format_time(rl.expires) if rl is not None else None,
            "source": self.source,
            "registry": self.registry,
        }


def current_revocations(
    trust: TrustStore,
    *,
    max_age: timedelta | None,
    registry: str | None = None,
    cache: BlobCache | None = None,
    now: datetime | None = None,
) -> CheckedRevocations:
    """The revocation list to check against (steps in the module docstring).

    Args:
        trust: its registry keys verify the list.
        max_age: the policy's ``max_revocation_age``.
        registry: a registry URL, or None to use only what the cache holds.
        cache: the client cache (default: ``LORAREG_CACHE`` or ``~/.cache/lorareg``).
        now: the time freshness is judged at (default: now).

    Raises:
        VerificationError: the fetched or held list is refused ("bad signature", "rollback", "freeze"),
            or the named registry is unreachable and no list is held for it.
    """
    store = cache if cache is not None else BlobCache()
    moment = now or datetime.now(UTC)
    if not trust.registry_keys():
        return CheckedRevocations(None, "none", registry, note=_NO_REGISTRY_KEY)
    if registry is None:
        held = store.held_revocations(trust.registry_keys(), now=moment, max_age=max_age)
        if held is None:
            return CheckedRevocations(None, "none", note=_NOT_CHECKED)
        return CheckedRevocations(held, "cache")
    from lorareg.client.api_client import Client

    with Client(registry, cache_dir=store.root) as client:
        return revocations_from(client, trust, max_age=max_age, now=moment)


def revocations_from(
    client: Client, trust: TrustStore, *, max_age: timedelta | None, now: datetime | None = None
) -> CheckedRevocations:
    """Step 1 with a client already open: its registry's current list, else the list its cache holds for it.

    Raises:
        VerificationError: as :func:`current_revocations`.
    """
    if not trust.registry_keys():
        return CheckedRevocations(None, "none", client.registry_url, note=_NO_REGISTRY_KEY)
    try:
        fetched = client.verified_revocations(trust, max_age=max_age)
        return CheckedRevocations(fetched, "registry", client.registry_url)
    except RemoteError as e:
        moment = now or datetime.now(UTC)
        return _held_for(client.cache, trust, client.registry_url, offline=e, now=moment, max_age=max_age)


def _held_for(
    store: BlobCache,
    trust: TrustStore,
    registry: str,
    *,
    offline: RemoteError,
    now: datetime,
    max_age: timedelta | None,
) -> CheckedRevocations:
    """The list held for an unreachable registry, re-verified; none held is a refusal."""
    held = store.held_revocations(trust.registry_keys(), now=now, max_age=max_age, registry_id=registry)
    if held is None:
        unavailable = f"revocation list unavailable: registry {registry} unreachable ({offline})"
        raise VerificationError([f"{unavailable} and none cached for it"]) from offline
    note = f"registry unreachable ({offline}); used the cached revocation list version {held.version}"
    return CheckedRevocations(held, "cache", registry, note)


_NOT_CHECKED = "no registry given and no revocation list in the cache: revocation was not checked"
_NO_REGISTRY_KEY = (
    "the trust file holds no registry key to verify a revocation list with: revocation was not checked "
    "(lorareg trust add-registry URL)"
)
