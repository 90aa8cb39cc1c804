"""A client's check that what it pulls is in the registry's transparency log, and the log is one history.

Every verified pull (and the loader's registry path, which pulls) runs :func:`check_in_log` before the
download, in this order:

0. fetch everything below in one snapshot, ``GET /api/v1/log/evidence?index=I&since=S`` (S: the size of
   the stored checkpoint);
1. verify the checkpoint the signed note against the trust file's registry keys
   (a checkpoint signed by an unknown key is refused);
2. compare with the newest checkpoint this client stored for the registry (:class:`CheckpointStore`):
   same origin, not smaller (a rolled-back log), and an RFC 9162 consistency proof from the stored size to
   the new one (a log that was rewritten, or forked for this client — a split view — fails it); then
   store the new one. The first contact stores it on trust, like the registry key in the trust file;
3. take the version's leaf (``tlog_index`` from the version detail), hash it here, and verify its
   inclusion proof against the checkpoint's root (a dropped or missing entry fails);
4. the leaf must be a ``publish`` entry naming the version, its content address, and the digest the signed
   bundle covers (an entry that names another digest fails).

The network is behind :class:`LogSource` (one method per log route), so the same checks run against any
source; ``HttpLog`` is the client's. This module raises :class:`VerificationError` with a reason that says
which of these was inconsistent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from lorareg.errors import LoraregError, RemoteError, VerificationError
from lorareg.signing import merkle
from lorareg.signing.checkpoint import Checkpoint, open_checkpoint

if TYPE_CHECKING:
    from lorareg.client.api_client import Client
    from lorareg.client.checkpoints import CheckpointStore
    from lorareg.signing.keys import PublicKey
    from lorareg.signing.trust import TrustStore

MAX_PROOF_HASHES = 64  # a proof longer than a 2^64-leaf tree is deep is refused before hashing


class LogSource(Protocol):
    """The four log routes of a registry (``docs/api.md``), answers unverified."""

    def checkpoint(self) -> bytes: ...

    def entries(self, start: int, end: int) -> list[dict[str, Any]]: ...

    def inclusion(self, index: int, tree_size: int) -> list[bytes]: ...

    def consistency(self, first: int, second: int) -> list[bytes]: ...

    def evidence(self, index: int, since: int) -> Evidence: ...


@dataclass(frozen=True, slots=True)
class Evidence:
    """One snapshot of the log for one leaf (``GET /api/v1/log/evidence``), unverified."""

    checkpoint: bytes
    entry: dict[str, Any] | None
    inclusion: list[bytes]
    consistency: list[bytes]


class HttpLog:
    """:class:`LogSource` over a :class:`~lorareg.client.Client`'s connection (retries, error mapping)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def checkpoint(self) -> bytes:
        return self._client._request("GET", "/api/v1/log/checkpoint").content

    def entries(self, start: int, end: int) -> list[dict[str, Any]]:
        params = {"start": str(start), "end": str(end)}
        found = self._client._json("GET", "/api/v1/log/entries", params=params).get("entries")
        if not isinstance(found, list) or not all(isinstance(e, dict) for e in found):
            raise RemoteError("registry answered /api/v1/log/entries without an entries list")
        return found

    def inclusion(self, index: int, tree_size: int) -> list[bytes]:
        params = {"index": str(index), "tree_size": str(tree_size)}
        return _hashes(self._client._json("GET", "/api/v1/log/inclusion", params=params))

    def consistency(self, first: int, second: int) -> list[bytes]:
        params = {"first": str(first), "second": str(second)}
        return _hashes(self._client._json("GET", "/api/v1/log/consistency", params=params))

    def evidence(self, index: int, since: int) -> Evidence:
        params = {"index": str(index), "since": str(since)}
        answer = self._client._json("GET", "/api/v1/log/evidence", params=params)
        note, entry = answer.get("checkpoint"), answer.get("entry")
        if not isinstance(note, str) or not (entry is None or isinstance(entry, dict)):
            raise RemoteError("registry answered /api/v1/log/evidence without a checkpoint")
        inclusion, consistency = answer.get("inclusion"), answer.get("consistency")
        return Evidence(
            note.encode("utf-8"),
            entry,
            _hashes(inclusion) if isinstance(inclusion, dict) else [],
            _hashes(consistency) if isinstance(consistency, dict) else [],
        )


def check_pull(client: Client, *, detail: Mapping[str, Any], bundle: bytes, trust: TrustStore) -> Checkpoint:
    """:func:`check_in_log` for ``Client.pull``: its connection, its cache, the trust file's registry keys."""
    from lorareg.client.checkpoints import CheckpointStore

    store = CheckpointStore(client.cache.root)
    keys = trust.registry_keys()
    return check_in_log(
        HttpLog(client), store, registry=client.registry_url, keys=keys, detail=detail, bundle=bundle
    )


def check_in_log(
    source: LogSource,
    store: CheckpointStore,
    *,
    registry: str,
    keys: Sequence[PublicKey],
    detail: Mapping[str, Any],
    bundle: bytes,
) -> Checkpoint:
    """Steps 1-4 of the module docstring for one version, in one round trip; return the checkpoint.

    Raises:
        VerificationError: unknown signer, rollback, split view, missing or mismatching entry.
        RemoteError: the registry cannot be reached.
    """
    ref = f"{detail.get('name')}@{detail.get('version')}"
    index = detail.get("tlog_index")
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise VerificationError([f"missing log entry: the registry names no log index for {ref} ({index!r})"])
    with store.locked(registry):
        held = store.held(registry)
        evidence = source.evidence(index, held.size if held is not None else 0)
        signed = open_checkpoint(evidence.checkpoint, keys)
        if held is not None:
            check_consistent(held, signed.checkpoint, evidence.consistency)
        store.remember(registry, signed.note, signed.checkpoint)
    check_entry(signed.checkpoint, evidence, detail=detail, bundle=bundle)
    return signed.checkpoint


def check_consistent(held: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """The log of ``new`` must be an append-only extension of the log of ``held``."""
    if held.origin != new.origin:
        raise VerificationError(
            [
                f"checkpoint origin changed: this client knows log {held.origin!r}, "
                f"the registry sent {new.origin!r}"
            ]
        )
    if new.size < held.size:
        raise VerificationError(
            [
                f"rolled-back log: the registry's checkpoint has {new.size} entries, "
                f"this client already saw a signed checkpoint with {held.size}"
            ]
        )
    try:
        merkle.verify_consistency(
            first=held.size,
            second=new.size,
            first_root=held.root_hash,
            second_root=new.root_hash,
            proof=proof if 0 < held.size < new.size else [],
        )
    except VerificationError as e:
        raise VerificationError(
            [
                f"split view: the registry's log of {new.size} entries (root {new.root_hash.hex()[:16]}…) "
                f"does not extend the log of {held.size} entries (root {held.root_hash.hex()[:16]}…) this "
                f"client saw before ({'; '.join(e.reasons)})"
            ]
        ) from e


def check_entry(
    checkpoint: Checkpoint, evidence: Evidence, *, detail: Mapping[str, Any], bundle: bytes
) -> None:
    """Steps 3-4: the version's own leaf is in the checkpoint and says what the signed bundle says."""
    ref = f"{detail.get('name')}@{detail.get('version')}"
    index = int(detail["tlog_index"])
    entry = evidence.entry
    body = _entry_body(entry) if entry is not None and entry.get("index") == index else None
    if index >= checkpoint.size or body is None:
        raise VerificationError(
            [
                f"missing log entry: {ref} names log index {index}, "
                f"the checkpoint has {checkpoint.size} entries"
            ]
        )
    try:
        merkle.verify_inclusion(
            leaf=merkle.leaf_hash(body),
            index=index,
            tree_size=checkpoint.size,
            proof=evidence.inclusion,
            root=checkpoint.root_hash,
        )
    except VerificationError as e:
        raise VerificationError(
            [f"the log entry {index} for {ref} is not in the signed checkpoint ({'; '.join(e.reasons)})"]
        ) from e
    compare_entry(_parse(body, index), detail=detail, signed_digest=_signed_digest(bundle), index=index)


def compare_entry(
    entry: Mapping[str, Any], *, detail: Mapping[str, Any], signed_digest: str, index: int
) -> None:
    """The leaf must be the publication of exactly this version and these bytes."""
    want = {"kind": "publish", "name": detail.get("name"), "version": detail.get("version")}
    reasons = [
        f"log entry {index} has {field} {entry.get(field)!r}, expected {value!r}"
        for field, value in want.items()
        if entry.get(field) != value
    ]
    if entry.get("sha256") != detail.get("sha256"):
        reasons.append(
            f"log entry {index} names sha256 {entry.get('sha256')!r}; "
            f"the registry serves {detail.get('sha256')}"
        )
    if entry.get("sha256") != signed_digest:
        reasons.append(
            f"log entry {index} names sha256 {entry.get('sha256')!r}; "
            f"the signed bundle covers {signed_digest}"
        )
    if reasons:
        raise VerificationError(reasons, subject=f"{detail.get('name')}@{detail.get('version')}")


def _entry_body(entry: Mapping[str, Any]) -> bytes | None:
    body = entry.get("body")
    return body.encode("utf-8") if isinstance(body, str) else None


def _parse(body: bytes, index: int) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as e:
        raise VerificationError([f"log entry {index} is not JSON ({e})"]) from e
    if not isinstance(data, dict):
        raise VerificationError([f"log entry {index} is not a JSON object"])
    return data


def _signed_digest(bundle: bytes) -> str:
    """The resource digest the bundle's statement names (its signature is verified later by the pull)."""
    from lorareg.signing.bundle import Bundle
    from lorareg.signing.statement import parse_statement

    try:
        return parse_statement(Bundle.from_bytes(bundle).envelope.payload).resource_digest
    except LoraregError as e:
        raise VerificationError([f"the signature bundle is unreadable: {e}"]) from e


def _hashes(answer: Mapping[str, Any]) -> list[bytes]:
    hashes = answer.get("hashes")
    if not isinstance(hashes, list) or len(hashes) > MAX_PROOF_HASHES:
        raise RemoteError("registry answered a log proof without a list of at most 64 hashes")
    try:
        return [bytes.fromhex(h) for h in hashes]
    except (TypeError, ValueError) as e:
        raise RemoteError(f"registry answered a log proof with a hash that is not hex ({e})") from e
