"""``pull``: the consumer's trust boundary, from a reference to a verified file in the cache.

:func:`pull` (behind ``Client.pull``) runs the steps in this order: (1) resolve the reference (an alias only
after the registry's signature on its move verified); (2) fetch the signature bundle; (3) fetch the
revocation list and verify it (signature, rollback against the newest version held in the cache, freeze),
keep it in the cache, and stop early if the blob is revoked; (4) download the blob into
``tmp/<hex>.part``, computing while it arrives the one digest the check needs (BLAKE3 when the signed
manifest carries it, else SHA-256; :func:`digest_plan`, ``lorareg.client.download``) and resuming with
``Range`` after a dropped connection; (5) verify the bundle against the trust file and policy with that
digest and the facts parsed from the header bytes seen during the download (:func:`verify_fetched`: no
second pass over the file, only a few bytes at the 0-dim tensors' offsets); (6) check that the signature
covers the content address and (:func:`check_identity`) names what was asked for; only then (7) rename
into the cache. A cached file is re-hashed (:func:`rehash`) and re-verified, revocations included, on every
pull. An unverified pull never touches the cache: it downloads into the output directory the caller must
name, beside the signature file, checked only against the registry's SHA-256.

The signature checks themselves live in ``lorareg.signing``; this module only orchestrates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lorareg import errors
from lorareg.client.aliases import checked_alias_target, split_alias
from lorareg.client.limits import TransferDeadline
from lorareg.client.logcheck import check_pull
from lorareg.client.transport import Progress, raise_for
from lorareg.errors import LoraregError, RemoteError, VerificationError
from lorareg.signing.filecheck import claimed_digests

if TYPE_CHECKING:
    from collections.abc import Callable

    from lorareg.adapter.facts import AdapterFacts
    from lorareg.client.api_client import Client
    from lorareg.client.download import Fetched
    from lorareg.signing.policy import Policy
    from lorareg.signing.trust import TrustStore
    from lorareg.signing.verify import VerifiedManifest


SIGNATURE_SUFFIX = ".sig"  # an unverified pull's signature file: FILE.sig, where ``lorareg verify`` looks


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


# -- the pull itself ---------------------------------------------------------------------------------


def pull(
    client: Client,
    ref: str,
    *,
    verify: bool = True,
    trust: TrustStore | None = None,
    policy: Policy | None = None,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    on_resolved: Callable[[Mapping[str, Any]], None] | None = None,
) -> Path:
    """Download ``ref`` into the cache, verified, and return the file's path.

    ``ns/name@alias`` (``@prod``) is followed to its version only after the registry's signature on the
    alias move verified, and refused when that version is yanked or revoked (``lorareg.client.aliases``).
    ``on_resolved`` is called with the version detail once the reference is resolved (the CLI prints
    which version an alias gave).

    With ``out_dir`` the verified file is also placed there (reflink, hard link, else copy) under
    ``<adapter>-<version>.safetensors``.
    ``trust``/``policy`` default to the trust file (``~/.config/lorareg/trust.toml``) and its policy.
    ``verify=False`` needs ``out_dir``: the file (and its signature file, ``….safetensors.sig``, for a
    later ``lorareg verify``) is written there only, never into the cache, which holds nothing that
    skipped or failed verification; the bytes are still checked against the registry's SHA-256.

    Raises:
        InputError: ``verify=False`` without ``out_dir``, or ``out_dir`` is not a usable directory.
        NotFoundError: the reference does not resolve.
        GoneError: the registry serves the blob as revoked (451).
        VerificationError: signature, trust, digest, revocation (rollback, freeze, revoked) or policy.
        RemoteError: the network or the server failed after retries.
    """
    if out_dir is not None:
        _prepare_out_dir(out_dir)
    if not verify:
        if out_dir is None:
            raise errors.InputError(
                "an unverified pull (--no-verify) needs an output directory (--out DIR): "
                "the cache holds only verified files"
            )
        return _pull_unverified(client, ref, out_dir, progress)
    trust, policy = _trust_and_policy(trust, policy)
    detail, ref = _resolve_for_pull(client, ref, trust)
    if on_resolved is not None:
        on_resolved(detail)
    sha256 = str(detail["sha256"])
    bundle = client.signature(detail["name"], detail["version"])
    checks = pull_checks(client, trust, policy, sha256=sha256, ref=ref)
    size = signed_size(bundle, trust=checks.trust, detail=detail, ref=ref)  # bounds the download
    check_pull(client, detail=detail, bundle=bundle, trust=checks.trust)  # in the log, one history
    algorithm, expected = digest_plan(bundle, sha256=sha256, verify=True)
    with client.cache.download_lock(sha256):
        cached = client.cache.lookup(sha256)
        path = cached or client.cache.part_path(sha256)
        if cached is None:
            fetched = _download(client, sha256, size, path, algorithm, progress)
        else:
            fetched = rehash(cached, algorithm)
        try:
            if fetched.digest != expected:
                raise VerificationError(
                    [f"digest mismatch: the file has {algorithm} {fetched.digest}, expected {expected}"],
                    subject=ref,
                )
            verified = verify_fetched(bundle, fetched, path=path, sha256=sha256, checks=checks)
            check_identity(verified, ref=ref, detail=detail)
        except LoraregError:
            if cached is None or fetched.digest != expected:
                _discard(client, path, sha256=sha256, cached=cached is not None)
            raise
        if cached is None:
            path = client.cache.install(sha256, part=path, bundle=bundle)
    return _copy_out(path, detail, out_dir) if out_dir is not None else path


def _resolve_for_pull(client: Client, ref: str, trust: TrustStore) -> tuple[dict[str, Any], str]:
    """The version detail and the exact ref to check it against; an alias is verified first."""
    named = split_alias(ref)
    if named is None:
        return client.resolve(ref), ref
    name, alias = named
    detail = checked_alias_target(client.alias(name, alias), trust.registry_keys(), name=name, alias=alias)
    return detail, f"{name}@{detail['version']}"


def _pull_unverified(client: Client, ref: str, out_dir: Path, progress: Progress | None) -> Path:
    """``pull --no-verify``: download into ``out_dir`` only, beside the (unchecked) signature file.

    The part file lives in ``out_dir`` too (hidden, resumed on the next try), so nothing of an
    unverified download ever touches the cache. The SHA-256 computed while downloading must equal the
    content address: that catches a broken transfer, and proves nothing about provenance.
    """
    detail = client.resolve(ref)
    sha256 = str(detail["sha256"])
    bundle = client.signature(detail["name"], detail["version"])
    size = unverified_size(bundle, detail=detail)
    target = _out_path(detail, out_dir)
    part = target.with_name(f".{target.name}.part")
    try:
        fetched = _download(client, sha256, size, part, "sha256", progress)
        if fetched.digest != sha256:
            raise VerificationError(
                [f"digest mismatch: the file has sha256 {fetched.digest}, the registry says {sha256}"],
                subject=ref,
            )
    except RemoteError:
        raise  # a dropped transfer: the part file is resumed next time
    except LoraregError:
        part.unlink(missing_ok=True)
        raise
    _write_beside(target.with_name(target.name + SIGNATURE_SUFFIX), bundle)
    part.replace(target)
    return target


def pull_checks(
    client: Client, trust: TrustStore | None, policy: Policy | None, *, sha256: str, ref: str
) -> PullChecks:
    """Step 3 of ``pull``: trust, policy and the revoked digests; a revoked blob is refused here."""
    trust, policy = _trust_and_policy(trust, policy)
    revocations = client.verified_revocations(trust, max_age=policy.max_revocation_age)
    revoked = {r.sha256: r.reason for r in revocations.revoked}
    if sha256 in revoked:
        listed = f"revocation list version {revocations.version}"
        raise VerificationError(
            [f"revoked: {sha256[:16]}… ({revoked[sha256]}), {listed}"],
            subject=ref,
        )
    return PullChecks(trust, policy, revoked)


def _download(
    client: Client, sha256: str, size: int, part: Path, algorithm: str, progress: Progress | None
) -> Fetched:
    from lorareg.client.download import download_resumable

    deadline = TransferDeadline(grace_s=client._timeout)
    return download_resumable(
        client._blob_opener(f"/api/v1/blobs/sha256/{sha256}", give_up_at=deadline.latest(size)),
        part=part,
        size=size,
        algorithm=algorithm,
        raise_for=raise_for,
        progress=progress,
        deadline=deadline,
    )


def _discard(client: Client, path: Path, *, sha256: str, cached: bool) -> None:
    """Remove a file that failed: a part file always, a cached file when its bytes changed."""
    if cached:
        client.cache.evict(sha256)
    else:
        path.unlink(missing_ok=True)


def _prepare_out_dir(out_dir: Path) -> None:
    """Create ``out_dir`` (or accept an existing directory) before anything is downloaded."""
    if out_dir.exists() and not out_dir.is_dir():
        raise errors.InputError(f"output directory {out_dir} is a file; expected a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise errors.InputError(f"cannot create output directory {out_dir}: {e.strerror}") from e


def _out_path(detail: Mapping[str, Any], out_dir: Path) -> Path:
    """``<adapter>-<version>.safetensors`` in ``out_dir``; name and version were checked (``resolve``), so
    the file name holds no separator, and a last check keeps it in ``out_dir`` whatever changes upstream."""
    adapter = str(detail["name"]).split("/")[-1]
    target = out_dir / f"{adapter}-{detail['version']}.safetensors"
    if target.parent != out_dir or target.name.startswith("."):
        raise RemoteError(f"the registry's name {detail['name']!r}@{detail['version']!r} is not a file name")
    return target


def _copy_out(path: Path, detail: Mapping[str, Any], out_dir: Path) -> Path:
    """The verified cache file placed in ``out_dir`` by reflink, hard link or copy (one write at most)."""
    from lorareg.client.placing import place

    target = _out_path(detail, out_dir)
    place(path, target)
    return target


def _write_beside(target: Path, data: bytes) -> None:
    """Write a small file atomically (temp file, rename)."""
    temp = target.with_name(f".{target.name}.tmp")
    try:
        temp.write_bytes(data)
        temp.replace(target)
    except OSError as e:
        temp.unlink(missing_ok=True)
        raise errors.StorageError(f"cannot write {target}: {e.strerror}") from e


def _trust_and_policy(trust: TrustStore | None, policy: Policy | None) -> tuple[TrustStore, Policy]:
    """Fill in the default trust file and its policy where the caller gave none."""
    from lorareg.signing.trust import load_trust

    store = load_trust(None) if trust is None else trust
    return store, policy if policy is not None else store.policy
