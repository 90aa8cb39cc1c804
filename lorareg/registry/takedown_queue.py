"""When a takedown is upheld, queue every published near-duplicate of the revoked adapter for review.

A re-packaged copy published *before* the takedown (renamed, re-saved, merged…) has other bytes, so
revoking the digest does not touch it. Its weights give it away: each published, not revoked version whose
fingerprint is a near-duplicate (``fingerprints.near_duplicates_of``) gets a new takedown request filed by
the registry itself, with the upheld request's grounds and a details text that links to it. Nothing is
revoked automatically: a reviewer decides each request like any other (a similar adapter may be a
legitimate retrain on licensed images). A version that already has an open request filed by the registry
for the same upheld takedown is not queued twice.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from sqlmodel import col, select

from lorareg.registry import fingerprints
from lorareg.registry.db import TakedownEvent, TakedownRequest, utcnow

if TYPE_CHECKING:
    from lorareg.registry.service import Registry
    from lorareg.registry.takedown import TakedownRecord

REGISTRY_CLAIMANT = "lorareg registry (weight fingerprint)"
REGISTRY_CONTACT = "registry@lorareg.invalid"
REGISTRY_ACTOR = "registry"


def queue_near_duplicates(
    registry: Registry, upheld: TakedownRecord, *, prefix: str, id_bytes: int
) -> list[str]:
    """File one pending request per near-duplicate of ``upheld``'s version; return their tracking ids."""
    with registry.db.read() as session:
        matches = fingerprints.near_duplicates_of(
            session, upheld.sha256, threshold=registry.near_duplicate_threshold
        )
    filed: list[str] = []
    now = utcnow()
    with registry.db.write() as session:
        for m in matches:
            link = f"whose takedown {upheld.id} was upheld"
            open_already = session.exec(
                select(TakedownRequest.id).where(
                    col(TakedownRequest.sha256) == m.sha256,
                    col(TakedownRequest.claimant) == REGISTRY_CLAIMANT,
                    col(TakedownRequest.details).contains(link),
                )
            ).first()
            if open_already is not None:
                continue
            row = TakedownRequest(
                id=prefix + secrets.token_hex(id_bytes),
                name=m.name,
                version=m.version,
                sha256=m.sha256,
                reason=upheld.reason,
                claimant=REGISTRY_CLAIMANT,
                contact=REGISTRY_CONTACT,
                details=(
                    f"near-duplicate of {upheld.name}@{upheld.version} "
                    f"(weight similarity {m.similarity:.2f}, coverage {m.coverage:.2f}), {link}"
                ),
                good_faith=True,
                status="pending",
                created=now,
                updated=now,
            )
            session.add(row)
            session.flush()
            note = f"near-duplicate of {upheld.name}@{upheld.version}; linked to {upheld.id}"
            session.add(
                TakedownEvent(request_id=row.id, action="filed", actor=REGISTRY_ACTOR, note=note, at=now)
            )
            filed.append(row.id)
    return filed
