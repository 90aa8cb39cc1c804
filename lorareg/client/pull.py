"""What a verified ``pull`` checks, given the bytes it downloaded: the pure half of ``Client.pull``.

``Client.pull`` (``lorareg.client``) does the I/O: resolve, fetch the bundle and revocation list, download
(``lorareg.client.download``). This module decides which one digest the download computes
(:func:`digest_plan`),
re-hashes a cached file (:func:`rehash`), and verifies the result (:func:`verify_fetched`): the bundle
against trust, policy and revocations with the digest computed while downloading and the facts parsed from
the header bytes that were hashed, then that the signature covers the content address the registry serves
the file under, and (:func:`check_identity`) that it names what was asked for. It never reads the
downloaded file again, except a few bytes at the 0-dim tensors' offsets (alpha values) and, for a cached
file, its header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorareg.errors import LoraregError, RemoteError, VerificationError
from lorareg.signing.filecheck import claimed_digests

if TYPE_CHECKING:
    from lorareg.adapter.facts import AdapterFacts
    from lorareg.client.download import Fetched
    from lorareg.signing.policy import Policy
    from lorareg.signing.trust import TrustStore
    from lorareg.signing.verify import VerifiedManifest


@dataclass(frozen=True, slots=True)
class PullChecks:
    """What a verified pull checks the file against, settled before the download."""

    trust: TrustStore
    policy: Policy
    revoked: dict[str, str]  # digest -> public reason, from the verified revocation list


def signed_size(bundle: bytes, *, trust: TrustStore, detail: Mapping[str, Any], ref: str) -> int:
    """The size the download may reach: the signed manifest's, checked before a byte is downloaded.

    The bundle's signatures are checked first (a trusted key must have signed it, else a registry could
    raise the size in an unsigned copy), then the signed resource digest and size must be what the
    registry serves: a registry that announces another size or digest is refused here, at once, instead
    of being believed for the length of a download. A signature without a lorareg manifest (allowed only
    by a policy without ``require_lorareg_manifest``) signs no size; then the registry's size stands, and
    the digest check after the download is what binds the bytes.

    Raises:
        VerificationError: no trusted signature, or the registry's digest or size is not the signed one.
    """
    from lorareg.signing.verify import signed_statement

    statement = signed_statement(bundle, trust=trust)
    reasons = []
    if statement.resource_digest != detail["sha256"]:
        reasons.append(
            f"the signature covers sha256 {statement.resource_digest}; the registry serves {detail['sha256']}"
        )
    size = (statement.manifest or {}).get("size", detail["size"])
    if type(size) is not int or size != detail["size"]:
        reasons.append(
            f"the registry says the file has {detail['size']} bytes; the signed manifest says {size}"
        )
    if reasons:
        raise VerificationError(reasons, subject=ref)
    return int(detail["size"])


def unverified_size(bundle: bytes, *, detail: Mapping[str, Any]) -> int:
    """The size an unverified download may reach: the registry's, which its own signature file must agree
    with when it carries a manifest (unverified: a mismatch only shows the registry contradicts itself).

    Raises:
        RemoteError: the registry's size and its signature file's manifest disagree.
    """
    from lorareg.signing.bundle import Bundle
    from lorareg.signing.statement import parse_statement

    try:
        manifest = parse_statement(Bundle.from_bytes(bundle).envelope.payload).manifest or {}
    except LoraregError:
        manifest = {}  # ``lorareg verify`` will say what is wrong with the signature file
    size = manifest.get("size", detail["size"])
    if size != detail["size"]:
        raise RemoteError(
            f"the registry says the file has {detail['size']} bytes; its signature file says {size}"
        )
    return int(detail["size"])


def digest_plan(bundle: bytes, *, sha256: str, verify: bool) -> tuple[str, str]:
    """The one digest to compute while downloading, and the value it must come out as.

    A verified pull computes BLAKE3 when the signed manifest carries one (as ``lorareg.signing.filecheck``
    does: the manifest's ``sha256`` is bound to the signed resource digest, so a BLAKE3 match identifies the
    bytes as strongly) and expects the manifest's value; :func:`verify_bundle` re-checks it under the
    signature. Otherwise SHA-256 against the registry's content address.
    """
    if verify:
        claimed = claimed_digests(bundle)[1].get("blake3")
        if claimed:
            return "blake3", claimed
    return "sha256", sha256


def rehash(path: Path, algorithm: str) -> Fetched:
    """A cached file hashed again (every pull re-checks it: a file changed on disk is evicted)."""
    from lorareg.client.download import Fetched
    from lorareg.signing.filecheck import digest_file

    size, digest = digest_file(path, algorithm)
    return Fetched(algorithm, digest, size, b"")


def verify_fetched(
    bundle: bytes, fetched: Fetched, *, path: Path, sha256: str, checks: PullChecks
) -> VerifiedManifest:
    """Steps 5-6 of ``pull``: the bundle against the digest computed in the download, then the address."""
    from lorareg.signing.verify import verify_bundle

    verified = verify_bundle(
        bundle,
        file_size=fetched.size,
        file_digests={fetched.algorithm: fetched.digest},
        file_facts=_file_facts(path, fetched),
        trust=checks.trust,
        policy=checks.policy,
        revoked=checks.revoked,
    )
    if verified.resource_digest != sha256:
        raise VerificationError(
            [f"the signature covers sha256 {verified.resource_digest}; the registry serves it as {sha256}"]
        )
    return verified


def check_identity(verified: VerifiedManifest, *, ref: str, detail: Mapping[str, Any]) -> None:
    """The signed manifest must name the adapter that was asked for (a registry cannot swap adapters)."""
    manifest = verified.manifest
    if manifest is None:
        return
    signed = manifest.to_json()
    reasons = []
    if signed.get("name") != detail.get("name") or signed.get("version") != detail.get("version"):
        reasons.append(
            f"the signed manifest is {signed.get('name')}@{signed.get('version')}; "
            f"the registry answered {detail.get('name')}@{detail.get('version')}"
        )
    name, sep, version = ref.partition("@")
    if "/" in name and len(name) != 64 and signed.get("name") != name:
        reasons.append(f"asked for {name}, the signed manifest is {signed.get('name')}")
    if sep and signed.get("version") != version:
        reasons.append(f"asked for version {version}, the signed manifest is {signed.get('version')}")
    if reasons:
        raise VerificationError(reasons, subject=ref)


def _file_facts(path: Path, fetched: Fetched) -> AdapterFacts:
    """Facts from the header bytes the download hashed (a cached file: its header, read again)."""
    from lorareg.adapter.facts import compute_facts
    from lorareg.adapter.safetensors import parse_header, read_header, read_scalars

    header = parse_header(fetched.head, file_size=fetched.size) if fetched.head else read_header(path)
    return compute_facts(header, read_scalars(path, header))  # a few bytes at the 0-dim tensors' offsets
