"""The verifier: signature-file bytes and facts about a file in, a verified manifest out. No I/O.

Everything the checks need is passed in: the bundle bytes, the file's size and digests (computed by the
caller from one read of the file), the facts read from its header, the trust store, the policy and the
revoked digests (taken by the caller from a revocation list it has already verified). A caller that
needs the file read for it uses :func:`lorareg.signing.filecheck.verify_file`.

Steps, in order (``docs/signing.md`` "Verification"); every reason that applies is collected, and the
checks stop early only where going on would mean trusting unchecked data:

1. bundle structure and size caps (Sigstore bundle v0.3, DSSE envelope; strict base64 and JSON);
2. payload type is ``application/vnd.in-toto+json``;
3. signatures checked over DSSE PAE of the exact payload bytes, before the payload is parsed; with no
   signature by a trusted key the checks stop here;
4. statement type, predicate type (OpenSSF model signing v1.0), exactly one subject, one file resource;
   the ``lorareg`` manifest parsed strictly (unknown fields refused);
5. signer trust: a publisher key must be trusted for the manifest's namespace; a registry signature is
   required when the policy says so;
6. file size and digests match the signed resource digest and the manifest's digests;
7. the manifest's file facts (family, format, type, rank, alpha, targets) match the file's facts;
8. none of the file's digests is revoked;
9. the family the caller expects;
10. the studio's policy (``Policy.check``), and whether a lorareg manifest is required at all.

A refusal after step 5 carries the accepted signers and the parsed manifest on the ``VerificationError``
(``.signers``, ``.manifest``): the signature is genuine, so saying who signed what is safe and helps the
reader see *why* (a file that differs from what acme signed, a licence the policy does not allow).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from lorareg.errors import InputError, VerificationError
from lorareg.signing.bundle import Bundle
from lorareg.signing.dsse import Envelope
from lorareg.signing.statement import PAYLOAD_TYPE, Statement, parse_statement

if TYPE_CHECKING:
    from lorareg.adapter.facts.model import AdapterFacts
    from lorareg.manifest.model import Manifest
    from lorareg.signing.keys import PublicKey

NO_MANIFEST_REASON = "no lorareg manifest: the signature covers the file's integrity only"
STRONG_DIGESTS = ("sha256", "blake3")  # either one alone identifies the file


class TrustedKeyLike(Protocol):
    """What the verifier needs of one trust-store entry (``lorareg.signing.trust.TrustedKey``)."""

    @property
    def keyid(self) -> str: ...

    @property
    def label(self) -> str: ...

    @property
    def role(self) -> str: ...  # "publisher" or "registry"

    @property
    def namespace(self) -> str | None: ...  # publishers: the namespace they may sign; None: any

    @property
    def public_key(self) -> PublicKey: ...


class TrustLike(Protocol):
    """What the verifier needs of a trust store (``TrustStore``, or the registry's per-namespace view)."""

    def get(self, keyid: str) -> TrustedKeyLike | None: ...

    def keys(self) -> Iterable[TrustedKeyLike]: ...


class PolicyLike(Protocol):
    """What the verifier needs of a policy (``lorareg.signing.policy.Policy``)."""

    @property
    def require_registry_signature(self) -> bool: ...

    @property
    def require_lorareg_manifest(self) -> bool: ...

    def check(self, manifest: Manifest) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class Signer:
    """A key whose signature verified and that the trust store accepts for this manifest."""

    keyid: str
    label: str
    role: str

    def to_json(self) -> dict[str, str]:
        """``{"keyid", "label", "role"}`` as ``verify --json`` prints it."""
        return {"keyid": self.keyid, "label": self.label, "role": self.role}


@dataclass(frozen=True, slots=True)
class VerifiedManifest:
    """The result of a successful verification; only :func:`verify_bundle` makes one.

    ``manifest`` is None only for a signature without a lorareg manifest under a policy that allows it.
    """

    manifest: Manifest | None
    signers: list[Signer]
    subject_name: str
    resource_digest: str
    notes: list[str] = field(default_factory=list)


def verify_bundle(
    bundle_bytes: bytes,
    *,
    file_size: int,
    file_digests: Mapping[str, str | None],
    file_facts: AdapterFacts | None,
    trust: TrustLike,
    policy: PolicyLike,
    revoked: Mapping[str, str] | None = None,
    expect_family: str | None = None,
) -> VerifiedManifest:
    """Verify a signature file against a file's size, digests and facts.

    Args:
        bundle_bytes: the signature file's bytes.
        file_size: the file's size in bytes.
        file_digests: digest name -> lower-case hex, as computed from the file (``FileHashes.to_json()``
            or only ``sha256`` / ``blake3``); at least one of :data:`STRONG_DIGESTS` the signature carries.
        file_facts: facts computed from the file's header; None skips step 7 (the caller says why).
        trust: trusted keys.
        policy: the studio's policy.
        revoked: revoked digest (hex) -> reason, from a verified revocation list.
        expect_family: the base family the caller's pipeline needs.

    Returns:
        The verified manifest and the keys that signed it.

    Raises:
        VerificationError: with every reason that applied.
    """
    envelope = _parse_bundle(bundle_bytes)
    reasons = _payload_type_problems(envelope)
    valid, sig_reasons = _check_signatures(envelope, trust)
    reasons += sig_reasons
    if not valid or reasons:
        raise VerificationError(reasons or [_no_trusted_signature(envelope)])
    statement = parse_statement(envelope.payload)  # raises VerificationError with every statement problem
    manifest, manifest_dict = _parse_manifest(statement, reasons)
    signers = _accept_signers(valid, manifest_dict, policy, reasons)
    _check_file(statement, manifest_dict, file_size, file_digests, reasons)
    if manifest_dict is not None and file_facts is not None:
        reasons += _fact_problems(manifest_dict, file_facts)
    reasons += _revocation_problems(statement, manifest_dict, file_digests, revoked or {})
    reasons += _family_problems(manifest_dict, file_facts, expect_family)
    if manifest is not None:
        reasons += policy.check(manifest)
    elif statement.manifest is None and policy.require_lorareg_manifest:
        reasons.append(NO_MANIFEST_REASON)
    if reasons:
        raise VerificationError(reasons, signers=[s.to_json() for s in signers], manifest=manifest_dict)
    notes = [] if statement.manifest is not None else [NO_MANIFEST_REASON]
    return VerifiedManifest(manifest, signers, statement.subject_name, statement.resource_digest, notes)


def signed_statement(bundle_bytes: bytes, *, trust: TrustLike) -> Statement:
    """The statement of a bundle that at least one trusted key signed, before any file is at hand.

    ``pull`` reads the signed size and digest from it so that a download is bounded by what was signed,
    not by what the server says. This is steps 1-3 of :func:`verify_bundle` only: the full verification
    (namespaces, policy, the file itself) still runs on the downloaded bytes.

    Raises:
        VerificationError: malformed bundle, wrong payload type, a trusted signature that does not
            verify, or no trusted signature at all.
    """
    envelope = _parse_bundle(bundle_bytes)
    reasons = _payload_type_problems(envelope)
    valid, sig_reasons = _check_signatures(envelope, trust)
    reasons += sig_reasons
    if not valid or reasons:
        raise VerificationError(reasons or [_no_trusted_signature(envelope)])
    return parse_statement(envelope.payload)


def _parse_bundle(bundle_bytes: bytes) -> Envelope:
    try:
        return Bundle.from_bytes(bundle_bytes).envelope
    except InputError as e:
        raise VerificationError([f"malformed signature file: {e}"]) from e


def _payload_type_problems(envelope: Envelope) -> list[str]:
    if envelope.payload_type != PAYLOAD_TYPE:
        return [f"payload type is {envelope.payload_type!r}; expected {PAYLOAD_TYPE!r}"]
    return []


def _check_signatures(envelope: Envelope, trust: TrustLike) -> tuple[list[TrustedKeyLike], list[str]]:
    """Check every signature over PAE(type, payload); return the trusted keys that verified and problems.

    A signature naming a trusted key that does not verify is a reason (tampering); a signature by an
    unknown key is ignored (a registry countersignature the consumer does not trust is normal).
    """
    data = envelope.pae()
    valid: list[TrustedKeyLike] = []
    problems: list[str] = []
    for index, sig in enumerate(envelope.signatures):
        named = trust.get(sig.keyid) if sig.keyid else None
        candidates = [named] if named is not None else ([] if sig.keyid else list(trust.keys()))
        signer = next((k for k in candidates if k.public_key.verify(sig.sig, data)), None)
        if signer is not None:
            if all(v.keyid != signer.keyid for v in valid):
                valid.append(signer)
        elif named is not None:
            problems.append(
                f"signature {index} by trusted key {_short(named)} does not verify over the payload"
            )
    return valid, problems


def _no_trusted_signature(envelope: Envelope) -> str:
    ids = ", ".join(s.keyid[:16] or "(no key id)" for s in envelope.signatures)
    return f"no signature by a trusted key (the file is signed by: {ids})"


def _parse_manifest(
    statement: Statement, reasons: list[str]
) -> tuple[Manifest | None, dict[str, Any] | None]:
    """Parse the lorareg manifest strictly; return it and its plain-dict form (None when absent or bad)."""
    if statement.manifest is None:
        return None, None
    from lorareg.manifest.model import Manifest

    try:
        manifest = Manifest.from_json(dict(statement.manifest))
    except InputError as e:
        reasons.append(f"lorareg manifest is invalid: {e}")
        return None, None
    return manifest, manifest.to_json()


def _accept_signers(
    valid: list[TrustedKeyLike], manifest: dict[str, Any] | None, policy: PolicyLike, reasons: list[str]
) -> list[Signer]:
    """Apply namespace and role rules to the keys whose signatures verified."""
    namespace = str(manifest["name"]).split("/", 1)[0] if manifest is not None else None
    accepted: list[Signer] = []
    for key in valid:
        if key.role == "publisher" and namespace is not None and key.namespace not in (None, namespace):
            reasons.append(
                f"publisher key {_short(key)} is trusted for namespace {key.namespace!r}, "
                f"but the manifest is in {namespace!r}"
            )
            continue
        accepted.append(Signer(key.keyid, key.label, key.role))
    if valid and not accepted:
        reasons.append("no signature by a key trusted for this manifest")
    if policy.require_registry_signature and not any(s.role == "registry" for s in accepted):
        reasons.append("policy requires a registry countersignature; none by a trusted registry key")
    return accepted


def _check_file(
    statement: Statement,
    manifest: dict[str, Any] | None,
    file_size: int,
    file_digests: Mapping[str, str | None],
    reasons: list[str],
) -> None:
    """Size and digests: the file against the signed resource and the manifest; the two against each other."""
    signed: dict[str, str] = {statement.resource_algorithm: statement.resource_digest}
    if manifest is not None:
        if manifest.get("size") != file_size:
            reasons.append(f"size mismatch: file has {file_size} bytes, manifest says {manifest.get('size')}")
        for name, value in (manifest.get("digests") or {}).items():
            if name in signed and signed[name] != value:
                reasons.append(
                    f"manifest {name} {value} differs from the signed resource digest {signed[name]}"
                )
            signed.setdefault(name, value)
    compared = [n for n in signed if file_digests.get(n) is not None]
    for name in compared:
        if file_digests[name] != signed[name]:
            reasons.append(
                f"digest mismatch: file has {name} {file_digests[name]}, signature says {signed[name]}"
            )
    if not any(n in STRONG_DIGESTS for n in compared):
        have = ", ".join(sorted(n for n, v in file_digests.items() if v)) or "none"
        reasons.append(
            f"no file digest to compare: computed {have}; the signature carries {', '.join(signed)}"
        )


def _fact_problems(manifest: dict[str, Any], facts: AdapterFacts) -> list[str]:
    """Facts the file shows must match what the manifest says about it."""
    observed = {
        ("base_model", "family"): facts.family,
        ("adapter", "format"): facts.format,
        ("adapter", "type"): facts.type,
        ("adapter", "rank"): facts.rank,
        ("adapter", "alpha"): facts.alpha,
        ("adapter", "targets"): list(facts.targets),
    }
    problems = []
    for (part, name), value in observed.items():
        claimed = (manifest.get(part) or {}).get(name)
        if not _same(claimed, value):
            problems.append(f"fact mismatch: file has {part}.{name} {value!r}, manifest says {claimed!r}")
    return problems


def _revocation_problems(
    statement: Statement,
    manifest: dict[str, Any] | None,
    file_digests: Mapping[str, str | None],
    revoked: Mapping[str, str],
) -> list[str]:
    digests = {statement.resource_digest, *(v for v in file_digests.values() if v)}
    if manifest is not None:
        digests.update(str(v) for v in (manifest.get("digests") or {}).values())
    return [f"revoked: {d[:16]}… ({revoked[d]})" for d in sorted(digests) if d in revoked]


def _family_problems(
    manifest: dict[str, Any] | None, facts: AdapterFacts | None, expect_family: str | None
) -> list[str]:
    if expect_family is None:
        return []
    family = (manifest or {}).get("base_model", {}).get("family") if manifest else None
    family = family or (facts.family if facts is not None else None)
    if family != expect_family:
        return [f"adapter is for base family {family!r}; expected {expect_family!r}"]
    return []


def _same(claimed: object, observed: object) -> bool:
    """Equality that treats 8 and 8.0 alike and tuples like lists (JSON has one number and one array)."""
    if isinstance(claimed, int | float) and isinstance(observed, int | float):
        if isinstance(claimed, bool) or isinstance(observed, bool):
            return claimed is observed
        return float(claimed) == float(observed)
    if isinstance(claimed, list | tuple) and isinstance(observed, list | tuple):
        return len(claimed) == len(observed) and all(
            _same(a, b) for a, b in zip(claimed, observed, strict=True)
        )
    return claimed == observed


def _short(key: TrustedKeyLike) -> str:
    return f"{key.keyid[:16]}… ({key.label})" if key.label else f"{key.keyid[:16]}…"
