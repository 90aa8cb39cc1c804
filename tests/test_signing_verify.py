"""The verifier, attack by attack: each test tampers with one thing and asserts the specific reason.

Adapters come from ``tests.support.lora_factory`` (real SDXL kohya layout, rank 2); keys from
``tests.fixtures.keys``;
the trust store and policy are the real ones. Attacks that need a well-signed but malicious statement (two
subjects, wrong predicate type, duplicate keys) are signed by the trusted publisher key itself: they test the
parser behind a valid signature, the case where a key signed something it should not have.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lorareg.errors import ConflictError, VerificationError
from lorareg.manifest.canonical import canonical_json
from lorareg.manifest.drafting import ManifestDraft
from lorareg.signing.bundle import MAX_BUNDLE_BYTES
from lorareg.signing.filecheck import verify_file
from lorareg.signing.keys import PrivateKey, generate
from lorareg.signing.policy import Policy
from lorareg.signing.sign import countersign, sign_file
from lorareg.signing.trust import TrustStore
from lorareg.signing.verify import NO_MANIFEST_REASON, VerifiedManifest
from tests.fixtures.keys import KeyFiles
from tests.support.lora_factory import write_adapter

DRAFT = {
    "name": "acme/pixel-art",
    "version": "1.2.0",
    "license": {"id": "CreativeML-OpenRAIL-M", "commercial_use": True, "derivatives": True,
                "attribution_required": False},
    "consent": {"subject": "style", "status": "not-required"},
    "creators": [{"name": "Ada", "role": "trainer"}],
}  # fmt: skip


@dataclass
class Signed:
    """A signed adapter on disk and the trust store that trusts its publisher for ``acme``."""

    path: Path
    bundle: bytes
    publisher: PrivateKey
    registry: PrivateKey
    trust: TrustStore

    def verify(
        self, bundle: bytes | None = None, *, path: Path | None = None, **options: Any
    ) -> VerifiedManifest:
        sig = self.path.parent / "under-test.sig"
        sig.write_bytes(self.bundle if bundle is None else bundle)
        options.setdefault("trust", self.trust)
        options.setdefault("policy", options["trust"].policy)
        return verify_file(path or self.path, sig, **options)

    def reasons(self, bundle: bytes | None = None, **options: Any) -> list[str]:
        with pytest.raises(VerificationError) as info:
            self.verify(bundle, **options)
        return info.value.reasons


@pytest.fixture
def signed(tmp_path: Path, publisher_key: KeyFiles, registry_key: KeyFiles) -> Callable[..., Signed]:
    """Factory: sign an SDXL kohya adapter with a draft changed by ``**draft`` (deep-merged one level)."""

    def _make(*, seed: int = 0, policy: Policy | None = None, **draft: Any) -> Signed:
        path = write_adapter(tmp_path / f"adapter-{seed}.safetensors", "sdxl-kohya", seed=seed)
        values = {
            k: (v | draft[k] if isinstance(v, dict) and k in draft else draft.get(k, v))
            for k, v in DRAFT.items()
        }
        bundle = sign_file(path, ManifestDraft.from_json(values), publisher_key.key)
        trust = TrustStore(policy=policy or Policy())
        trust = trust.with_key(publisher_key.key.public_key, label="acme", role="publisher", namespace="acme")
        trust = trust.with_key(registry_key.key.public_key, label="registry", role="registry", namespace=None)
        return Signed(path, bundle, publisher_key.key, registry_key.key, trust)

    return _make


def payload_of(bundle: bytes) -> dict[str, Any]:
    return json.loads(base64.b64decode(json.loads(bundle)["dsseEnvelope"]["payload"]))


def with_payload(
    bundle: bytes, payload: bytes, *, sign_with: PrivateKey | None = None, payload_type: str | None = None
) -> bytes:
    """The bundle with another payload, re-signed by ``sign_with`` or keeping the old (now bad) signature."""
    from lorareg.signing.dsse import pae

    obj = json.loads(bundle)
    env = obj["dsseEnvelope"]
    env["payload"] = base64.b64encode(payload).decode()
    if payload_type is not None:
        env["payloadType"] = payload_type
    if sign_with is not None:
        sig = sign_with.sign(pae(env["payloadType"], payload))
        env["signatures"] = [{"sig": base64.b64encode(sig).decode(), "keyid": sign_with.key_id}]
    return json.dumps(obj).encode()


def edited(
    bundle: bytes, edit: Callable[[dict[str, Any]], None], *, sign_with: PrivateKey | None = None
) -> bytes:
    statement = payload_of(bundle)
    edit(statement)
    return with_payload(bundle, canonical_json(statement), sign_with=sign_with)


# --- happy paths -------------------------------------------------------------------------------------------


def test_sign_then_verify_returns_the_manifest_and_the_publisher(signed: Callable[..., Signed]) -> None:
    s = signed()
    result = s.verify()
    assert result.manifest is not None and result.manifest.ref == "acme/pixel-art@1.2.0"
    assert result.manifest.base_model.family == "sdxl"
    assert [(x.role, x.label) for x in result.signers] == [("publisher", "acme")]


@pytest.mark.parametrize("trusted", ["publisher", "registry", "both"])
def test_countersigned_file_verifies_with_either_key(signed: Callable[..., Signed], trusted: str) -> None:
    s = signed()
    both = countersign(s.bundle, s.registry)
    keep = {"publisher": {"publisher"}, "registry": {"registry"}, "both": {"publisher", "registry"}}[trusted]
    trust = TrustStore(tuple(k for k in s.trust.keys() if k.role in keep), s.trust.policy)
    result = s.verify(both, trust=trust)
    assert {x.role for x in result.signers} == keep


def test_countersigning_keeps_the_payload_and_the_publisher_signature(signed: Callable[..., Signed]) -> None:
    s = signed()
    both = json.loads(countersign(s.bundle, s.registry))
    one = json.loads(s.bundle)
    assert both["dsseEnvelope"]["payload"] == one["dsseEnvelope"]["payload"]
    assert both["dsseEnvelope"]["signatures"][0] == one["dsseEnvelope"]["signatures"][0]
    assert both["verificationMaterial"]["publicKey"]["hint"] == s.publisher.key_id
    with pytest.raises(ConflictError):
        countersign(json.dumps(both).encode(), s.registry)


@pytest.mark.parametrize("digest", ["sha256", "blake3"])
def test_both_digest_paths_verify(signed: Callable[..., Signed], digest: str) -> None:
    assert signed().verify(digest=digest).manifest is not None


# --- attacks on the file -----------------------------------------------------------------------------------


def test_flipped_tensor_byte_is_refused(signed: Callable[..., Signed]) -> None:
    s = signed()
    data = bytearray(s.path.read_bytes())
    data[-3] ^= 0x01
    s.path.write_bytes(data)
    assert any(r.startswith("digest mismatch") for r in s.reasons())


def test_flipped_header_byte_is_refused(signed: Callable[..., Signed]) -> None:
    s = signed()
    data = bytearray(s.path.read_bytes())
    at = data.index(b"lora_unet_") + len(b"lora_unet_")  # a letter inside the first UNet tensor name
    data[at] = ord("X") if data[at] != ord("X") else ord("Y")
    s.path.write_bytes(data)
    reasons = s.reasons()
    assert any(r.startswith("digest mismatch") for r in reasons)


@pytest.mark.parametrize("digest", ["sha256", "blake3"])
def test_valid_signature_moved_onto_another_adapter_is_refused(
    signed: Callable[..., Signed], digest: str
) -> None:
    s, other = signed(seed=0), signed(seed=1)
    reasons = s.reasons(path=other.path, digest=digest)
    assert any(r.startswith(f"digest mismatch: file has {digest}") for r in reasons)


def test_revoked_digest_is_refused(signed: Callable[..., Signed]) -> None:
    s = signed()
    sha = payload_of(s.bundle)["predicate"]["lorareg"]["digests"]["sha256"]
    reasons = s.reasons(revoked={sha: "takedown: likeness without consent"})
    assert any(r.startswith("revoked:") and "likeness without consent" in r for r in reasons)


def test_wrong_base_family_is_refused(signed: Callable[..., Signed]) -> None:
    reasons = signed().reasons(expect_family="sd1")
    assert reasons == ["adapter is for base family 'sdxl'; expected 'sd1'"]


# --- attacks on the manifest and statement ------------------------------------------------------------------

MANIFEST_EDITS = {
    "licence": lambda m: m["license"].update(id="MIT"),
    "consent": lambda m: m["consent"].update(status="obtained"),
    "base model": lambda m: m["base_model"].update(family="sd1"),
    "creator": lambda m: m["creators"][0].update(name="Mallory"),
}


@pytest.mark.parametrize("field", list(MANIFEST_EDITS), ids=list(MANIFEST_EDITS))
def test_edited_manifest_field_is_refused(signed: Callable[..., Signed], field: str) -> None:
    s = signed()
    tampered = edited(s.bundle, lambda st: MANIFEST_EDITS[field](st["predicate"]["lorareg"]))
    reasons = s.reasons(tampered)
    assert len(reasons) == 1 and "does not verify over the payload" in reasons[0]


def test_signature_from_unknown_key_is_refused(signed: Callable[..., Signed]) -> None:
    s = signed()
    forged = edited(s.bundle, lambda st: None, sign_with=generate())
    assert s.reasons(forged)[0].startswith("no signature by a trusted key")


def test_publisher_key_signing_outside_its_namespace_is_refused(signed: Callable[..., Signed]) -> None:
    s = signed(name="globex/pixel-art")
    assert any("trusted for namespace 'acme'" in r and "'globex'" in r for r in s.reasons())


def test_swapped_payload_type_is_refused(signed: Callable[..., Signed]) -> None:
    s = signed()
    swapped = with_payload(s.bundle, base64.b64decode(json.loads(s.bundle)["dsseEnvelope"]["payload"]),
                           payload_type="application/json")  # fmt: skip
    reasons = s.reasons(swapped)
    assert reasons[0] == "payload type is 'application/json'; expected 'application/vnd.in-toto+json'"


STATEMENT_ATTACKS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "predicate-type": (
        lambda st: st.update(predicateType="https://slsa.dev/provenance/v1"),
        "predicateType is",
    ),
    "statement-type": (lambda st: st.update(_type="https://in-toto.io/Statement/v0.1"), "statement _type is"),
    "two-subjects": (lambda st: st["subject"].append(dict(st["subject"][0], name="other")), "2 subjects"),
    "unknown-manifest-field": (
        lambda st: st["predicate"]["lorareg"].update(mood="happy"),
        "lorareg manifest is invalid",
    ),
    "unknown-predicate-field": (lambda st: st["predicate"].update(extra=1), "predicate has unknown field"),
    "two-resources": (
        lambda st: st["predicate"]["resources"].append(st["predicate"]["resources"][0]),
        "2 files",
    ),
    "shard-serialization": (
        lambda st: st["predicate"]["serialization"].update(method="shards"),
        "method is 'shards'",
    ),
}


@pytest.mark.parametrize("attack", list(STATEMENT_ATTACKS), ids=list(STATEMENT_ATTACKS))
def test_malformed_statement_signed_by_trusted_key_is_refused(
    signed: Callable[..., Signed], attack: str
) -> None:
    s = signed()
    edit, expected = STATEMENT_ATTACKS[attack]
    reasons = s.reasons(edited(s.bundle, edit, sign_with=s.publisher))
    assert any(expected in r for r in reasons), reasons


def test_duplicate_keys_in_payload_are_refused(signed: Callable[..., Signed]) -> None:
    s = signed()
    payload = canonical_json(payload_of(s.bundle))
    twice = payload.replace(b'"version":"1.2.0"', b'"version":"1.2.0","version":"9.9.9"', 1)
    assert twice != payload
    reasons = s.reasons(with_payload(s.bundle, twice, sign_with=s.publisher))
    assert any("duplicate JSON key" in r for r in reasons)


# --- attacks on the signature file -------------------------------------------------------------------------


def _garbage_sig(b: bytes) -> bytes:
    obj = json.loads(b)
    obj["dsseEnvelope"]["signatures"][0]["sig"] = "!!not base64!!"
    return json.dumps(obj).encode()


def _noncanonical_payload(b: bytes) -> bytes:
    obj = json.loads(b)
    obj["dsseEnvelope"]["payload"] = obj["dsseEnvelope"]["payload"].rstrip("=")
    return json.dumps(obj).encode()


BUNDLE_ATTACKS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "truncated": (lambda b: b[: len(b) // 2], "not valid JSON"),
    "oversized": (lambda b: b + b" " * MAX_BUNDLE_BYTES, "the cap is"),
    "base64-garbage": (_garbage_sig, "not valid base64"),
    "unpadded-base64": (_noncanonical_payload, "base64"),
    "wrong-media-type": (lambda b: b.replace(b"bundle.v0.3+json", b"bundle.v9+json"), "mediaType"),
    "duplicate-bundle-key": (lambda b: b.replace(b'{"dsseEnvelope"', b'{"mediaType":"x","dsseEnvelope"', 1),
                             "duplicate JSON key"),
    "not-json-object": (lambda b: b"[]", "JSON object"),
}  # fmt: skip


@pytest.mark.parametrize("attack", list(BUNDLE_ATTACKS), ids=list(BUNDLE_ATTACKS))
def test_malformed_signature_file_is_refused(signed: Callable[..., Signed], attack: str) -> None:
    s = signed()
    mutate, expected = BUNDLE_ATTACKS[attack]
    tampered = mutate(s.bundle)
    assert tampered != s.bundle
    reasons = s.reasons(tampered)
    assert reasons[0].startswith("malformed signature file") and expected in reasons[0], reasons


# --- policy ------------------------------------------------------------------------------------------------


def test_likeness_adapter_without_consent_is_refused_by_default(signed: Callable[..., Signed]) -> None:
    s = signed(consent={"subject": "likeness", "status": "unknown"})
    assert any("likeness adapter without obtained consent" in r for r in s.reasons())


def test_licence_not_in_allowed_licenses_is_refused(signed: Callable[..., Signed]) -> None:
    s = signed(policy=Policy(allowed_licenses=("Apache-2.0", "MIT")))
    assert any(r.startswith("licence CreativeML-OpenRAIL-M is not allowed") for r in s.reasons())


def test_registry_signature_required_but_absent_is_refused(signed: Callable[..., Signed]) -> None:
    s = signed(policy=Policy(require_registry_signature=True))
    assert any("requires a registry countersignature" in r for r in s.reasons())
    assert s.verify(countersign(s.bundle, s.registry)).manifest is not None


def test_every_reason_is_reported_not_just_the_first(signed: Callable[..., Signed]) -> None:
    s = signed(consent={"subject": "likeness", "status": "unknown"},
               policy=Policy(require_registry_signature=True, allowed_licenses=("MIT",)))  # fmt: skip
    reasons = s.reasons(expect_family="flux1")
    assert len(reasons) == 4, reasons


def test_signature_without_lorareg_manifest_checks_integrity_then_reports_it(
    signed: Callable[..., Signed],
) -> None:
    s = signed()
    bare = edited(s.bundle, lambda st: st["predicate"].pop("lorareg"), sign_with=s.publisher)
    assert s.reasons(bare) == [NO_MANIFEST_REASON]
    result = s.verify(bare, policy=Policy(require_lorareg_manifest=False))
    assert result.manifest is None and result.notes == [NO_MANIFEST_REASON]
    data = bytearray(s.path.read_bytes())
    data[-1] ^= 1
    s.path.write_bytes(data)
    assert any(
        r.startswith("digest mismatch")
        for r in s.reasons(bare, policy=Policy(require_lorareg_manifest=False))
    )
