"""Where the loader's bytes come from: one read of the adapter, its signature file, and revoked digests.

A reference is either a local path (its signature file is ``path + ".sig"`` unless given) or a registry
reference ``namespace/name[@version]``, pulled through the client's verified content-addressed cache. Either
way the adapter file is read **once** into memory; everything after (hashing, header parsing, verification,
tensor parsing) works on that one buffer, so no file can change between the check and the load.

Revoked digests come from the client's one revocation lookup (``lorareg.client.revocations``): the
registry's current list, verified, when it answers, else the newest list the client cache holds for it,
re-verified. No torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from lorareg.client import Client
from lorareg.client.credentials import token_for
from lorareg.client.revocations import revocations_from
from lorareg.errors import InputError, NotFoundError, PayloadTooLargeError
from lorareg.signing.policy import Policy
from lorareg.signing.trust import TrustStore

MAX_ADAPTER_BYTES = 8 * 2**30  # an adapter larger than this is not read into memory
MAX_SIGNATURE_BYTES = 1 * 2**20  # the registry's cap on a signature bundle
SIGNATURE_SUFFIX = ".sig"
_REGISTRY_REF = re.compile(r"[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*(@[0-9A-Za-z.+-]+)?")


@dataclass(frozen=True, slots=True)
class AdapterSource:
    """An adapter's bytes, read once, with its signature file and the digests revoked at load time."""

    label: str  # the ref or path, as messages name it
    data: bytes
    bundle: bytes
    revoked: dict[str, str] = field(default_factory=dict)
    revocation_version: int | None = None
    notes: tuple[str, ...] = ()


def open_adapter(
    ref: str | os.PathLike[str],
    *,
    registry: str | Client | None,
    signature: str | os.PathLike[str] | None,
    trust: TrustStore,
    policy: Policy,
) -> AdapterSource:
    """Read the adapter named by ``ref`` and everything needed to verify it.

    Args:
        ref: a local path, or ``namespace/name[@version]`` to pull from ``registry``.
        registry: a registry URL or a ``lorareg.client.Client``; needed for registry refs, and for
            revocation checks of local files (without it a local file is checked against no list).
        signature: the signature file of a local path (default ``path + ".sig"``).
        trust: the trust store (registry keys verify the revocation list).
        policy: the policy (its maximum revocation-list age).

    Raises:
        NotFoundError: no such file and not a registry reference.
        VerificationError: the revocation list cannot be had fresh or verified.
        PayloadTooLargeError: the adapter or signature file is over its cap.
    """
    path = Path(ref)
    if path.is_file():
        sig_path = Path(signature) if signature is not None else Path(str(path) + SIGNATURE_SUFFIX)
        return _with_revocations(str(path), path, sig_path, registry, trust, policy)
    text = str(ref)
    if not _REGISTRY_REF.fullmatch(text):
        raise NotFoundError(f"{text}: no such file, and not a registry reference (namespace/name[@version])")
    if registry is None:
        raise InputError(f"{text}: a registry reference needs registry= (a URL or a lorareg Client)")
    with _client(registry) as client:
        cached = client.pull(text, trust=trust, policy=policy)  # verified, fresh revocations included
        return _with_revocations(text, cached, client.cache.bundle_path(cached.name), client, trust, policy)


def read_once(path: Path, *, limit: int, what: str) -> bytes:
    """The whole file, read with one open and one read, after checking its size on the open handle."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise PayloadTooLargeError(f"{path}: {what} is {size} bytes; at most {limit} are read")
            return handle.read(limit + 1)
    except FileNotFoundError as e:
        raise NotFoundError(f"{path}: {what} not found") from e
    except IsADirectoryError as e:
        raise InputError(f"{path}: {what} is a directory") from e


def _with_revocations(
    label: str, path: Path, sig_path: Path, registry: str | Client | None, trust: TrustStore, policy: Policy
) -> AdapterSource:
    data = read_once(path, limit=MAX_ADAPTER_BYTES, what="adapter file")
    bundle = read_once(sig_path, limit=MAX_SIGNATURE_BYTES, what="signature file")
    if len(data) > MAX_ADAPTER_BYTES or len(bundle) > MAX_SIGNATURE_BYTES:
        raise PayloadTooLargeError(f"{path}: grew while being read")
    if registry is None:
        unchecked = "no registry given: revocation was not checked"
        return AdapterSource(label, data, bundle, notes=(unchecked,))
    with _client(registry) as client:
        checked = revocations_from(client, trust, max_age=policy.max_revocation_age)
    version = checked.revocations.version if checked.revocations is not None else None
    notes = (checked.note,) if checked.note else ()
    return AdapterSource(label, data, bundle, checked.revoked(), version, notes)


class _client:
    """A context around a registry argument: a URL opens (and closes) a Client; a Client is borrowed.

    A URL's client sends the token the CLI would (``credentials.token_for``: ``LORAREG_TOKEN``, else the
    sign-in ``lorareg login`` stored for that URL), so ``registry=URL`` works with a private catalogue
    (``LORAREG_READ=signed-in``); pass a ``Client(url, token)`` to choose the token.
    """

    def __init__(self, registry: str | Client) -> None:
        self._owned = isinstance(registry, str)
        self._client = Client(registry, token_for(registry)) if isinstance(registry, str) else registry

    def __enter__(self) -> Client:
        return self._client

    def __exit__(self, *exc: object) -> None:
        if self._owned:
            self._client.close()
