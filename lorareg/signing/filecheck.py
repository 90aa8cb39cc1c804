"""Verify a file on disk against its signature file: the I/O around the pure verifier.

One pass over the file computes only the digest the check needs, not the six hashes of ``inspect``:

- BLAKE3 when the manifest carries one (multi-threaded: the fastest way to bind the bytes to the signed
  manifest, whose ``sha256`` the verifier checks equals the signed OMS resource digest);
- otherwise the algorithm of the signed resource (SHA-256 for lorareg and ``model_signing`` by default).

The size is the number of bytes hashed, not a separate ``stat``. The header (for the facts) is read while
the digest is computed in another thread; both reads are of the same path, so for a loader that must use
the exact bytes it checked see ``lorareg.loader``. Choosing the algorithm peeks at the unverified payload;
that choice cannot make a bad file pass, because :func:`~lorareg.signing.verify.verify_bundle` then checks
everything, including that the digest computed is one the signature covers.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from lorareg.adapter.hashing import new_hasher
from lorareg.errors import InputError, LoraregError, NotFoundError
from lorareg.signing.bundle import MAX_BUNDLE_BYTES, Bundle
from lorareg.signing.verify import PolicyLike, TrustLike, VerifiedManifest, verify_bundle

if TYPE_CHECKING:
    from lorareg.adapter.facts.model import AdapterFacts

HASH_CHUNK_BYTES = 1 * 2**20  # SHA-256 is fastest with small reads that stay in cache
BLAKE3_CHUNK_BYTES = 16 * 2**20  # big enough for BLAKE3 to spread one chunk over every core


def verify_file(
    path: Path,
    bundle_path: Path,
    *,
    trust: TrustLike,
    policy: PolicyLike,
    revoked: Mapping[str, str] | None = None,
    expect_family: str | None = None,
    digest: str | None = None,
) -> VerifiedManifest:
    """Read ``path`` once and ``bundle_path``, and verify them with :func:`verify_bundle`.

    ``digest`` forces ``"sha256"`` or ``"blake3"`` instead of :func:`choose_digest`'s pick (benchmarks, and
    callers that want the OMS resource digest itself checked).

    Raises:
        NotFoundError: the file or the signature file does not exist.
        InputError: either cannot be read, or the file is not a safetensors adapter.
        VerificationError: the signature file does not verify (every reason).
    """
    bundle_bytes = read_bundle_file(bundle_path)
    algorithm = digest or choose_digest(bundle_bytes)
    result: dict[str, tuple[int, str]] = {}
    errors: list[BaseException] = []
    worker = threading.Thread(target=_hash_into, args=(path, algorithm, result, errors), daemon=True)
    worker.start()
    try:
        facts = _read_facts(path)
    finally:
        worker.join()
    if errors:
        raise errors[0]
    size, digest = result["digest"]
    return verify_bundle(
        bundle_bytes,
        file_size=size,
        file_digests={algorithm: digest},
        file_facts=facts,
        trust=trust,
        policy=policy,
        revoked=revoked,
        expect_family=expect_family,
    )


def read_bundle_file(path: Path) -> bytes:
    """Read a signature file, at most one byte past the bundle cap (the verifier refuses what is over it).

    Raises:
        NotFoundError, InputError.
    """
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BUNDLE_BYTES + 1)
    except FileNotFoundError as e:
        raise NotFoundError(f"signature file {path} does not exist") from e
    except OSError as e:
        raise InputError(f"cannot read signature file {path}: {e.strerror}") from e
    return data


def choose_digest(bundle_bytes: bytes) -> str:
    """The one digest worth computing for this signature file (see the module docstring)."""
    resource_algorithm, digests = claimed_digests(bundle_bytes)
    return "blake3" if digests.get("blake3") else resource_algorithm


def claimed_digests(bundle_bytes: bytes) -> tuple[str, dict[str, str]]:
    """``(signed resource algorithm, the manifest's digests)`` of a bundle, read **unverified**.

    Only for choosing which digest to compute before verification: the verifier re-checks every value
    under the signature afterwards. An unreadable bundle gives ``("sha256", {})`` (the verifier says why).
    """
    from lorareg.signing.statement import parse_statement

    try:
        statement = parse_statement(Bundle.from_bytes(bundle_bytes).envelope.payload)
    except LoraregError:
        return "sha256", {}
    digests = (statement.manifest or {}).get("digests")
    if not isinstance(digests, dict):
        return statement.resource_algorithm, {}
    return statement.resource_algorithm, {k: v for k, v in digests.items() if isinstance(v, str) and v}


def digest_file(path: Path, algorithm: str) -> tuple[int, str]:
    """Hash ``path`` in one sequential read; return (bytes read, lower-case hex digest).

    Raises:
        NotFoundError, InputError.
    """
    hasher = new_hasher(algorithm, all_cores=True)
    chunk = BLAKE3_CHUNK_BYTES if algorithm == "blake3" else HASH_CHUNK_BYTES
    buf = bytearray(chunk)
    view = memoryview(buf)
    size = 0
    try:
        with path.open("rb", buffering=0) as f:
            while n := f.readinto(buf):
                hasher.update(view[:n])
                size += n
    except FileNotFoundError as e:
        raise NotFoundError(f"file {path} does not exist") from e
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from e
    return size, hasher.hexdigest()


def _hash_into(
    path: Path, algorithm: str, result: dict[str, tuple[int, str]], errors: list[BaseException]
) -> None:
    try:
        result["digest"] = digest_file(path, algorithm)
    except BaseException as e:  # noqa: BLE001 - handed to the calling thread, which re-raises it
        errors.append(e)


def _read_facts(path: Path) -> AdapterFacts:
    """The header's facts, read while the digest thread runs.

    Also imports the manifest model that :func:`verify_bundle` needs next: an import done here overlaps
    the hashing instead of adding to the time after it.
    """
    import lorareg.manifest.model  # noqa: F401 - imported early on purpose, see above
    from lorareg.adapter.inspect import inspect_file

    return inspect_file(path, with_hashes=False).facts
