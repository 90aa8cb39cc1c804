"""Following a registry key rotation from the trust file's registry key to the registry's new one.

Before a verified pull, the CLI asks the registry which keys it signs with (``GET /api/v1/keys``). Any key
the trust file does not hold must be reached through the key-set chain (``GET /api/v1/keys/chain``,
verified by :func:`lorareg.signing.keyset.follow_chain` from the trusted registry keys); each key reached is
added to the trust file beside the old one (so what the old key signed keeps verifying), with a line saying
so. A new key the chain does not reach is refused: the studio re-establishes trust out of band
(``lorareg trust add-registry``, after checking the fingerprint), as on first contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lorareg.errors import RemoteError, VerificationError
from lorareg.signing.keys import load_public_key
from lorareg.signing.keyset import follow_chain

if TYPE_CHECKING:
    from lorareg.client.api_client import Client
    from lorareg.signing.trust import TrustStore


@dataclass(frozen=True, slots=True)
class Followed:
    """The trust store after following the chain, and one line per key added (empty: nothing changed)."""

    trust: TrustStore
    notes: tuple[str, ...]


def follow_rotation(client: Client, trust: TrustStore) -> Followed:
    """Trust the registry's current keys if the chain from a trusted registry key reaches them.

    A trust file with no registry key is left alone (the pull then says what is missing).

    Raises:
        VerificationError: the registry serves a key the chain does not reach, or a link is not signed by
            the key it replaces (e.g. a key-set document signed only by the new key).
        RemoteError: the registry answers the chain request without a list (an unreachable registry is
            left to the pull itself).
    """
    trusted = trust.registry_keys()
    try:
        listed = client.keys()
    except RemoteError:
        return Followed(trust, ())  # unreachable: the pull that follows reports it (or a bad argument first)
    served = [load_public_key(str(k.get("public_key", "")).encode("ascii")) for k in listed]
    unknown = [k for k in served if k.key_id not in {t.key_id for t in trusted}]
    if not trusted or not unknown:
        return Followed(trust, ())
    documents = client._json("GET", "/api/v1/keys/chain").get("keysets")
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise RemoteError("registry answered /api/v1/keys/chain without a list of key-set documents")
    reached = follow_chain([d.encode("utf-8") for d in documents], trusted)
    reached_ids = {k.key_id for k, _ in reached}
    missing = [k for k in unknown if k.key_id not in reached_ids]
    if missing:
        raise VerificationError(
            [
                f"the registry signs with key {missing[0].key_id[:16]}…, which no key-set document "
                "signed by a registry key this client trusts announces; re-establish trust out of band "
                "(`lorareg trust add-registry URL`, after checking the fingerprint)"
            ]
        )
    notes = []
    for key, voucher in reached:
        old = trust.get(voucher)
        label = f"{old.label if old else 'registry'} (rotated)"
        trust = trust.with_key(key, label=label[:100], role="registry", namespace=None)
        notes.append(
            f"trust: registry key rotated: now trusting {key.key_id[:16]}… as announced by "
            f"{voucher[:16]}… (the old key stays trusted for what it signed)"
        )
    return Followed(trust, tuple(notes))
