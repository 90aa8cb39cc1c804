"""False refusals of real files: metadata values with control, C1 or bidi characters (latin-1 mojibake,
a pasted terminal escape) are kept by the reader, accepted at publish and shown escaped on the web.

The reader and the CLI side are in ``test_safetensors_reader.py`` and ``test_inspect_cli.py``.
"""

from __future__ import annotations

from lorareg.adapter.facts import compute_facts
from lorareg.adapter.hashing import StreamHasher
from lorareg.adapter.safetensors import parse_header, read_scalars
from lorareg.manifest import ManifestDraft, complete_manifest
from lorareg.signing.sign import sign_manifest
from tests.fixtures.registry import draft_manifest
from tests.fixtures.web import WebSite
from tests.support.lora_factory import adapter_bytes

MOJIBAKE = {
    "ss_training_comment": "don\u00e2\u0080\u0099t stop",  # latin-1 mojibake of a UTF-8 apostrophe
    "modelspec.title": "\x1b]0;pwned\x07Ink\x1b[2J",  # an ESC from a pasted terminal title
    "ss_output_name": "safe\u202eexe.lora",  # a bidi override
}


def _publish(web: WebSite, metadata: dict[str, str]) -> bytes:
    """Publish acme/mojibake 1.0.0 through the service (the publish path re-inspects the blob)."""
    data = adapter_bytes("sd1-kohya", rank=1, blocks=1, seed=11, metadata=metadata)
    header = parse_header(data, file_size=len(data))
    hasher = StreamHasher()
    hasher.update(data)
    hashes = hasher.finish()
    draft = ManifestDraft.from_json(draft_manifest("acme/mojibake", "1.0.0"))
    facts = compute_facts(header, read_scalars(data, header))
    manifest = complete_manifest(draft, facts=facts, hashes=hashes, size=len(data)).to_json()
    bundle = sign_manifest(
        subject_name="mojibake.safetensors", sha256=hashes.sha256, manifest=manifest, key=web.publisher.key
    )
    web.registry.upload_blob(hashes.sha256, iter([data]), principal=web.publisher.principal)
    web.registry.publish("acme/mojibake", bundle, principal=web.publisher.principal)
    return data


def test_file_with_mojibake_metadata_is_published_and_shown_escaped_on_its_page(web: WebSite) -> None:
    _publish(web, MOJIBAKE)
    page = web.client.get("/adapters/acme/mojibake/1.0.0")
    assert page.status_code == 200
    html = page.text
    assert not any(ch in html for ch in "\x1b\x07\x80\x99\u202e")
    assert "don\u00e2\\u0080\\u0099t stop" in html
    assert "\\u001b]0;pwned\\u0007Ink" in html and "safe\\u202eexe.lora" in html


def test_published_blob_keeps_the_metadata_verbatim(web: WebSite) -> None:
    data = _publish(web, MOJIBAKE)
    record = web.registry.resolve("acme/mojibake@1.0.0")
    stored = b"".join(web.registry.store.open_range(record.sha256))
    assert stored == data
    assert parse_header(stored, file_size=len(stored)).metadata == MOJIBAKE
