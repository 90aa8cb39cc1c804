"""A signed C2PA manifest for a generated image: "AI-generated", with the verified adapters as ingredients.

Optional (``c2pa-python``, the Content Authenticity Initiative's library): :func:`embed_c2pa` rewrites a
PNG, JPEG or WebP (by suffix) that :func:`lorareg.save_image` wrote, adding a C2PA manifest store signed with
the caller's X.509 certificate chain (ES256). The PNG text chunks / JPEG and WebP EXIF stay. Validators
report ``signingCredential.untrusted`` unless the chain leads to a CA on the C2PA trust list; that is a
deployment matter, not the format's.
Deliberately not here: certificate management (the caller passes PEM bytes).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from lorareg import __version__
from lorareg.errors import InputError
from lorareg.images.provenance import AdapterUse

AI_GENERATED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"  # IPTC source type
_ADAPTER_FORMAT = "application/octet-stream"
_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}  # else image/png


def embed_c2pa(
    path: str | Path, adapters: list[AdapterUse], *, cert_chain_pem: bytes, private_key_pem: bytes
) -> None:
    """Sign ``path`` (PNG, JPEG or WebP by suffix) in place, naming ``adapters`` as ingredients.

    Raises:
        InputError: c2pa-python is missing, or it refuses the certificate, key or image.
    """
    try:
        import c2pa
    except ImportError as e:
        raise InputError("C2PA needs the c2pa-python package (pip install c2pa-python)") from e
    target = Path(path)
    manifest = {
        "claim_generator_info": [{"name": "lorareg", "version": __version__}],
        "title": target.name,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": AI_GENERATED}]},
            },
            {"label": "org.lorareg.adapters", "data": {"adapters": [a.to_json() for a in adapters]}},
        ],
    }
    source = target.read_bytes()
    out = io.BytesIO()
    try:
        signer = c2pa.Signer.from_info(
            c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, cert_chain_pem, private_key_pem, None)
        )
        builder = c2pa.Builder(manifest)
        for use in adapters:
            ingredient = {
                "title": use.ref,
                "relationship": "inputTo",
                "format": _ADAPTER_FORMAT,
                "instance_id": f"sha256:{use.sha256}",
            }
            builder.add_ingredient(json.dumps(ingredient), _mime(target), io.BytesIO(source))
        builder.sign(signer, _mime(target), io.BytesIO(source), out)
    except c2pa.C2paError as e:
        raise InputError(f"C2PA signing failed: {e}") from e
    target.write_bytes(out.getvalue())


def read_c2pa(path: str | Path) -> dict[str, object]:
    """The image's C2PA manifest store as JSON (``validation_state``, ``manifests``...).

    Raises:
        InputError: no manifest, or c2pa-python is missing.
    """
    try:
        import c2pa
    except ImportError as e:
        raise InputError("C2PA needs the c2pa-python package (pip install c2pa-python)") from e
    try:
        reader = c2pa.Reader(_mime(Path(path)), io.BytesIO(Path(path).read_bytes()))
        store: dict[str, object] = json.loads(reader.json())
    except c2pa.C2paError as e:
        raise InputError(f"{path}: no readable C2PA manifest: {e}") from e
    return store


def _mime(path: Path) -> str:
    return _MIME.get(path.suffix.lower(), "image/png")
