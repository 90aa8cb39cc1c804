"""The transparency log's Merkle maths against RFC 9162: hand-computed trees, every proof, tampering."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from lorareg.errors import InputError, VerificationError
from lorareg.signing import merkle as tlog
from lorareg.signing.keys import generate

MAX_N = 20


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _leaves(n: int) -> list[bytes]:
    return [tlog.leaf_hash(f"entry {i}".encode()) for i in range(n)]


def _mth(leaves: list[bytes]) -> bytes:
    """The RFC's recursive definition, written independently of tlog.root_hash."""
    if not leaves:
        return _h(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _h(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:]))


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert tlog.root_hash([]) == _h(b"")


def test_leaf_and_node_prefixes_follow_rfc9162() -> None:
    assert tlog.leaf_hash(b"a") == _h(b"\x00a")
    assert tlog.node_hash(b"L", b"R") == _h(b"\x01LR")


def test_three_leaf_tree_is_computed_by_hand() -> None:
    a, b, c = (tlog.leaf_hash(x) for x in (b"a", b"b", b"c"))
    assert tlog.root_hash([a, b, c]) == _h(b"\x01" + _h(b"\x01" + a + b) + c)
    assert tlog.inclusion_path(2, [a, b, c]) == (_h(b"\x01" + a + b),)
    assert tlog.inclusion_path(0, [a, b, c]) == (b, c)


def test_consistency_from_two_to_three_leaves_is_computed_by_hand() -> None:
    a, b, c = (tlog.leaf_hash(x) for x in (b"a", b"b", b"c"))
    # first=2 is a power of two: its root is implied, only the new right subtree is sent
    assert tlog.consistency_path(2, [a, b, c]) == (c,)


@pytest.mark.parametrize("n", range(MAX_N + 1))
def test_root_matches_the_recursive_definition(n: int) -> None:
    assert tlog.root_hash(_leaves(n)) == _mth(_leaves(n))


def test_every_inclusion_proof_verifies_up_to_twenty_leaves() -> None:
    for n in range(1, MAX_N + 1):
        leaves = _leaves(n)
        root = tlog.root_hash(leaves)
        for i in range(n):
            proof = tlog.inclusion_path(i, leaves)
            tlog.verify_inclusion(leaf=leaves[i], index=i, tree_size=n, proof=proof, root=root)


def test_every_consistency_proof_verifies_up_to_twenty_leaves() -> None:
    for n in range(1, MAX_N + 1):
        leaves = _leaves(n)
        for m in range(0, n + 1):
            proof = tlog.consistency_path(m, leaves)
            tlog.verify_consistency(
                first=m,
                second=n,
                first_root=tlog.root_hash(leaves[:m]),
                second_root=tlog.root_hash(leaves),
                proof=proof,
            )


def test_tampered_inclusion_proofs_fail() -> None:
    for n in range(2, MAX_N + 1):
        leaves = _leaves(n)
        root = tlog.root_hash(leaves)
        for i in range(n):
            proof = list(tlog.inclusion_path(i, leaves))
            for j in range(len(proof)):
                bad = proof.copy()
                bad[j] = _h(bad[j])
                with pytest.raises(VerificationError):
                    tlog.verify_inclusion(leaf=leaves[i], index=i, tree_size=n, proof=bad, root=root)
            with pytest.raises(VerificationError):  # the proof of one leaf does not prove another
                other = (i + 1) % n
                tlog.verify_inclusion(leaf=leaves[other], index=i, tree_size=n, proof=proof, root=root)
            with pytest.raises(VerificationError):  # a truncated path never reaches the root
                tlog.verify_inclusion(leaf=leaves[i], index=i, tree_size=n, proof=proof[:-1], root=root)


def test_tampered_consistency_proofs_fail() -> None:
    for n in range(2, MAX_N + 1):
        leaves = _leaves(n)
        for m in range(1, n):
            proof = list(tlog.consistency_path(m, leaves))
            first_root, second_root = tlog.root_hash(leaves[:m]), tlog.root_hash(leaves)
            for j in range(len(proof)):
                bad = proof.copy()
                bad[j] = _h(bad[j])
                with pytest.raises(VerificationError):
                    tlog.verify_consistency(
                        first=m, second=n, first_root=first_root, second_root=second_root, proof=bad
                    )


def test_rewritten_history_fails_consistency() -> None:
    leaves = _leaves(8)
    rewritten = leaves.copy()
    rewritten[2] = tlog.leaf_hash(b"quietly changed")
    proof = tlog.consistency_path(5, rewritten + _leaves(10)[8:])
    with pytest.raises(VerificationError):
        tlog.verify_consistency(
            first=5,
            second=10,
            first_root=tlog.root_hash(leaves[:5]),
            second_root=tlog.root_hash(rewritten + _leaves(10)[8:]),
            proof=proof,
        )


@pytest.mark.parametrize(
    ("index", "size"), [(-1, 4), (4, 4), (0, 0)], ids=["negative", "past-end", "empty-tree"]
)
def test_out_of_range_inclusion_is_refused(index: int, size: int) -> None:
    with pytest.raises(InputError):
        tlog.inclusion_path(index, _leaves(size))


def test_signed_tree_head_verifies_only_under_the_registry_key() -> None:
    key, other = generate(), generate()
    head = tlog.TreeHead(3, tlog.root_hash(_leaves(3)), datetime(2026, 5, 1, tzinfo=UTC))
    signed = tlog.sign_tree_head(head, key)
    assert tlog.verify_tree_head(signed, [key.public_key]) == head
    with pytest.raises(VerificationError):
        tlog.verify_tree_head(signed, [other.public_key])
