"""Signing and verification of adapter files: keys, DSSE, Sigstore bundles, in-toto statements, the verifier.

Modules, by layer: ``keys`` (ECDSA P-256), ``dsse`` (PAE and envelopes), ``bundle`` (the signature file),
``statement`` (the OpenSSF model-signing v1.0 statement with the ``lorareg`` manifest), ``verify`` (bytes in,
:class:`VerifiedManifest` out, no I/O), ``sign`` (``sign_file``, ``countersign``) and ``filecheck``
(``verify_file``: the one-read I/O around the verifier). ``trust`` and ``policy`` hold the studio's trusted
keys and rules. The format is described in ``docs/signing.md``.

``sign_file``, ``countersign`` and ``verify_file`` are imported on first use: they pull in the header reader
and the manifest model, which the low-level modules (used by the revocation list and the log) do not need.
"""

from __future__ import annotations

from typing import Any

from lorareg.signing.keys import PrivateKey, PublicKey, generate, key_id, load_private_key, load_public_key
from lorareg.signing.verify import Signer, VerifiedManifest, verify_bundle

__all__ = [
    "PrivateKey",
    "PublicKey",
    "Signer",
    "VerifiedManifest",
    "countersign",
    "generate",
    "key_id",
    "load_private_key",
    "load_public_key",
    "sign_file",
    "verify_bundle",
    "verify_file",
]

_LAZY = {
    "sign_file": "lorareg.signing.sign",
    "countersign": "lorareg.signing.sign",
    "verify_file": "lorareg.signing.filecheck",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lorareg.signing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
