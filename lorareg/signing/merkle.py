"""The transparency log's Merkle tree: RFC 9162 hashing, proofs, their pure verifiers, and tree heads.

Leaves are hashed ``SHA-256(0x00 || entry)`` and inner nodes ``SHA-256(0x01 || left || right)`` with the
split at the largest power of two below ``n`` (RFC 9162 section 2.1.1), so a log cannot present one history
to one client and another to the next without a failing consistency proof. Proof generation (2.1.3.1,
2.1.4.1) works on a list of leaf hashes; the verifiers (2.1.3.2, 2.1.4.2) take only hashes and sizes.

Signing of tree heads goes through ``lorareg.signing.dsse``; storing leaves is the service's job — this module
does no I/O and keeps no state.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lorareg.errors import InputError, VerificationError
from lorareg.manifest.canonical import canonical_json, strict_json_loads
from lorareg.signing.dsse import Envelope, Signature
from lorareg.signing.keys import PrivateKey, PublicKey

TREE_HEAD_PAYLOAD_TYPE = "application/vnd.lorareg.treehead+json"
MAX_ENTRIES_PER_PAGE = 1000  # leaves returned by one log_entries call at most
ENTRY_KINDS = ("publish", "yank", "unyank", "revoke", "alias")

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One leaf: its position, kind, the canonical JSON body that was hashed, and when it was appended."""

    index: int
    kind: str
    body: bytes
    leaf_hash: bytes
    created: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "body": self.body.decode("utf-8"),
            "leaf_hash": self.leaf_hash.hex(),
            "created": self.created.isoformat().replace("+00:00", "Z"),
        }


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """The audit path proving leaf ``index`` is in the tree of the first ``tree_size`` leaves."""

    index: int
    tree_size: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "tree_size": self.tree_size, "hashes": [h.hex() for h in self.hashes]}


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """The nodes proving the tree of ``first`` leaves is a prefix of the tree of ``second`` leaves."""

    first: int
    second: int
    hashes: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second, "hashes": [h.hex() for h in self.hashes]}


@dataclass(frozen=True, slots=True)
class TreeHead:
    """The payload of a signed tree head."""

    size: int
    root_hash: bytes
    timestamp: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp.isoformat().replace("+00:00", "Z"),
        }


def sign_tree_head(head: TreeHead, key: PrivateKey) -> bytes:
    """A DSSE envelope (canonical JSON bytes) over the tree head, signed by the registry key."""
    envelope = Envelope(canonical_json(head.to_json()), TREE_HEAD_PAYLOAD_TYPE, ())
    return canonical_json(envelope.with_signature(Signature(key.sign(envelope.pae()), key.key_id)).to_json())


def verify_tree_head(envelope_bytes: bytes, keys: Sequence[PublicKey]) -> TreeHead:
    """Check a signed tree head against trusted registry keys; return its content.

    Raises:
        VerificationError: malformed, wrong payload type, or no signature by one of ``keys``.
    """
    try:
        envelope = Envelope.from_json(strict_json_loads(envelope_bytes))
    except InputError as e:
        raise VerificationError([f"tree head is not a DSSE envelope: {e}"]) from e
    if envelope.payload_type != TREE_HEAD_PAYLOAD_TYPE:
        raise VerificationError([f"tree head payload type is {envelope.payload_type!r}"])
    if not any(k.verify(s.sig, envelope.pae()) for k in keys for s in envelope.signatures):
        raise VerificationError(["tree head is not signed by a trusted registry key"])
    obj = strict_json_loads(envelope.payload)
    try:
        stamp = datetime.fromisoformat(str(obj["timestamp"]).replace("Z", "+00:00"))
        return TreeHead(int(obj["size"]), bytes.fromhex(obj["root_hash"]), stamp)
    except (KeyError, TypeError, ValueError) as e:
        raise VerificationError([f"tree head payload is malformed: {e}"]) from e


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)`` — the leaf prefix keeps a leaf from ever equalling an inner node."""
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes; the empty tree's root is ``SHA-256("")`` (RFC 9162 2.1.1)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Pairing left to right and carrying an odd last node up gives the same tree as splitting at the
    # largest power of two below n, in O(n) instead of O(n log n).
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def inclusion_path(index: int, leaves: Sequence[bytes]) -> tuple[bytes, ...]:
    """PATH(m, D[n]) of RFC 9162 2.1.3.1 over the given leaf hashes."""
    if not 0 <= index < len(leaves):
        raise InputError(f"leaf index {index} is outside a tree of size {len(leaves)}")
    return tuple(_path(index, leaves))


def consistency_path(first: int, leaves: Sequence[bytes]) -> tuple[bytes, ...]:
    """PROOF(m, D[n]) of RFC 9162 2.1.4.1; empty when ``first`` is 0 or equals the tree size."""
    if not 0 <= first <= len(leaves):
        raise InputError(f"first size {first} is outside 0..{len(leaves)}")
    if first in (0, len(leaves)):
        return ()
    return tuple(_subproof(first, leaves, complete=True))


def verify_inclusion(*, leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check an inclusion proof (RFC 9162 2.1.3.2); raise :class:`VerificationError` if it fails.

    ``leaf`` is the leaf hash (already ``0x00``-prefixed and hashed).
    """
    if not 0 <= index < tree_size:
        raise VerificationError([f"leaf index {index} is outside a tree of size {tree_size}"])
    fn, sn, r = index, tree_size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError(["inclusion proof is longer than the tree is deep"])
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise VerificationError([f"inclusion proof for leaf {index} does not lead to root {root.hex()}"])


def verify_consistency(
    *, first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 2.1.4.2); raise :class:`VerificationError` if it fails."""
    if not 0 <= first <= second:
        raise VerificationError([f"tree sizes {first} and {second} are not in order"])
    if first == 0 or first == second:
        if proof:
            raise VerificationError(["consistency proof for equal or empty first tree must be empty"])
        if first == second and first_root != second_root:
            raise VerificationError([f"trees of equal size {first} have different roots"])
        return
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the first root is itself a node of the path
        path.insert(0, first_root)
    if not path:
        raise VerificationError(["consistency proof is empty"])
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(["consistency proof is longer than the tree is deep"])
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise VerificationError([f"consistency proof from size {first} to {second} does not match the roots"])


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n <= 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), root_hash(leaves[k:])]
    return [*_path(m - k, leaves[k:]), root_hash(leaves[:k])]


def _subproof(m: int, leaves: Sequence[bytes], *, complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root_hash(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete=complete), root_hash(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], complete=False), root_hash(leaves[:k])]
