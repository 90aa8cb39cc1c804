"""The registry client: every ``/api/v1`` endpoint (docs/api.md) as a method of :class:`Client`.

Each method sends one request through :class:`~lorareg.client.transport.Transport` (retries, caps,
deadlines, error answers mapped back to :class:`~lorareg.errors.LoraregError`) and checks the shape of the
answer (``lorareg.client.answers``) before anything else reads it: the server is trusted for nothing that
was not signed. ``Client.pull``, the consumer's trust boundary, is orchestrated in ``lorareg.client.pull``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from lorareg import errors
from lorareg.client.answers import (
    checked_detail,
    checked_keys,
    checked_list,
    checked_page,
    checked_summary,
    checked_texts,
)
from lorareg.client.cache import BlobCache
from lorareg.client.pull import pull
from lorareg.client.transport import DEFAULT_TIMEOUT_S, Progress, Transport

if TYPE_CHECKING:
    from lorareg.signing.revocation import RevocationList
    from lorareg.signing.trust import TrustStore

UPLOAD_CHUNK_BYTES = 1 * 2**20  # read size when streaming a file to the server
MAX_BUNDLE_ANSWER_BYTES = 1 * 2**20  # a signature bundle (lorareg.signing.bundle.MAX_BUNDLE_BYTES)
MAX_REVOCATIONS_BYTES = 16 * 2**20  # a signed revocation list
MAX_PREVIEW_DOWNLOAD_BYTES = 16 * 2**20  # cleaned previews are a few hundred KiB
_REVOKED_MARK = "was revoked: "  # the server's 451 message puts the public reason after this


class Client(Transport):
    """A lorareg registry, spoken to over HTTP; a context manager that closes its connections."""

    def __init__(
        self,
        registry_url: str,
        token: str | None = None,
        *,
        cache_dir: Path | str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(registry_url, token, timeout=timeout, transport=transport)
        self.cache = BlobCache(cache_dir)

    # -- catalogue ------------------------------------------------------------------------------------
    def search(self, query: str | None = None, **filters: Any) -> dict[str, Any]:
        """One page of ``GET /api/v1/adapters``: ``{"items": [...], "next_cursor": ...}``."""
        params = {k: _param(v) for k, v in {"q": query, **filters}.items() if v is not None}
        return checked_page(self._json("GET", "/api/v1/adapters", params=params), what="search")

    def resolve(self, ref: str) -> dict[str, Any]:
        """Version detail for ``ns/name``, ``ns/name@version`` or any of the six hashes.

        The name, version, digest and size are checked (``lorareg.client.answers``) before they are used.
        """
        answer = self._json("GET", "/api/v1/resolve", params={"ref": ref})
        return checked_detail(answer, what=f"resolve {ref!r}")

    def adapter(self, name: str) -> dict[str, Any]:
        """An adapter with every version (yanked and revoked flagged)."""
        return self._json("GET", f"/api/v1/adapters/{_checked_name(name)}")

    def keys(self) -> list[dict[str, str]]:
        """The registry's public keys (for ``lorareg trust add-registry``)."""
        return checked_keys(self._json("GET", "/api/v1/keys"), what="keys")

    def signature(self, name: str, version: str) -> bytes:
        """The countersigned bundle of a version, byte for byte (at most ``MAX_BUNDLE_ANSWER_BYTES``)."""
        url = f"/api/v1/adapters/{_checked_name(name)}/versions/{_checked_version(version)}/signature"
        return self._request("GET", url, cap=MAX_BUNDLE_ANSWER_BYTES).content

    def revocations(self) -> bytes:
        """The current signed revocation list (unverified bytes, at most ``MAX_REVOCATIONS_BYTES``)."""
        return self._request("GET", "/api/v1/revocations", cap=MAX_REVOCATIONS_BYTES).content

    def yank(self, ref: str) -> dict[str, Any]:
        """Yank ``ns/name@version`` (publisher of the namespace)."""
        name, version = _split_exact(ref)
        answer = self._json("POST", f"/api/v1/adapters/{name}/versions/{version}/yank", idempotent=True)
        return checked_texts(answer, ("ref", "status"), what="yank")

    def unyank(self, ref: str) -> dict[str, Any]:
        """Undo a yank of ``ns/name@version``."""
        name, version = _split_exact(ref)
        answer = self._json("POST", f"/api/v1/adapters/{name}/versions/{version}/unyank", idempotent=True)
        return checked_texts(answer, ("ref", "status"), what="unyank")

    def similar(self, ref: str) -> dict[str, Any]:
        """The registry's most similar adapters to ``ns/name@version`` (weight fingerprints)."""
        name, version = _split_exact(ref)
        return self._json("GET", f"/api/v1/adapters/{name}/versions/{version}/similar")

    def similar_to(self, fingerprint: bytes) -> dict[str, Any]:
        """The registry's most similar adapters to a fingerprint computed here (the file stays local)."""
        headers = {"content-type": "application/octet-stream"}
        return self._json("POST", "/api/v1/similar", content=fingerprint, headers=headers, idempotent=True)

    # -- aliases --------------------------------------------------------------------------------------
    def aliases(self, name: str) -> dict[str, Any]:
        """``{"aliases": [...]}``: every alias of ``ns/name`` with the version it names."""
        return self._json("GET", f"/api/v1/adapters/{name}/aliases")

    def alias(self, name: str, alias: str) -> dict[str, Any]:
        """One alias with its registry-signed move and the version it names (``target``)."""
        return self._json("GET", f"/api/v1/adapters/{name}/aliases/{_path_part(alias)}")

    def set_alias(self, name: str, alias: str, version: str) -> dict[str, Any]:
        """Point ``name@alias`` at ``version`` (publisher of the namespace or admin token)."""
        return self._json(
            "PUT",
            f"/api/v1/adapters/{name}/aliases/{_path_part(alias)}",
            content=_json_bytes({"version": version}),
            headers={"Content-Type": "application/json"},
            idempotent=True,
        )

    def delete_alias(self, name: str, alias: str) -> dict[str, Any]:
        """Remove ``name@alias``; returns what it pointed at."""
        return self._json("DELETE", f"/api/v1/adapters/{name}/aliases/{_path_part(alias)}")

    # -- webhooks -------------------------------------------------------------------------------------
    def add_webhook(self, url: str, events: list[str], *, namespace: str | None = None) -> dict[str, Any]:
        """Register a webhook; the answer's ``secret`` is shown this once."""
        body = {"url": url, "events": events, "namespace": namespace}
        return self._json(
            "POST",
            "/api/v1/webhooks",
            content=_json_bytes(body),
            headers={"Content-Type": "application/json"},
        )

    def webhooks(self) -> dict[str, Any]:
        """``{"webhooks": [...]}``: the hooks this token may manage."""
        return self._json("GET", "/api/v1/webhooks")

    def delete_webhook(self, hook_id: str) -> dict[str, Any]:
        return self._json("DELETE", f"/api/v1/webhooks/{_path_part(hook_id)}")

    def webhook_deliveries(self, hook_id: str) -> dict[str, Any]:
        """``{"deliveries": [...]}``, newest first, each with its attempts' HTTP status codes."""
        return self._json("GET", f"/api/v1/webhooks/{_path_part(hook_id)}/deliveries")

    def redeliver(self, hook_id: str, delivery_id: int) -> dict[str, Any]:
        return self._json(
            "POST", f"/api/v1/webhooks/{_path_part(hook_id)}/deliveries/{delivery_id}/redeliver"
        )

    # -- takedowns and previews -----------------------------------------------------------------------
    def file_takedown(
        self, ref: str, *, reason: str, claimant: str, contact: str, details: str, good_faith: bool
    ) -> dict[str, Any]:
        """File a takedown request (no token needed); the answer's ``id`` is the tracking id.

        ``good_faith`` has no default: the claimant affirms the statement, never the library on their behalf.
        """
        body = {
            "ref": ref,
            "reason": reason,
            "claimant": claimant,
            "contact": contact,
            "details": details,
            "good_faith": good_faith,
        }
        answer = self._json("POST", "/api/v1/takedowns", content=_json_bytes(body), headers=_JSON_HEADERS)
        return checked_texts(answer, ("id",), what="takedown")

    def takedown_status(self, request_id: str) -> dict[str, Any]:
        """The public status of a takedown request."""
        answer = self._json("GET", f"/api/v1/takedowns/{_path_part(request_id)}")
        return checked_texts(answer, _TAKEDOWN_FIELDS, what="takedown status")

    def list_takedowns(self, status: str | None = None) -> dict[str, Any]:
        """The review queue (reviewer token): ``{"items": [...]}``."""
        answer = self._json("GET", "/api/v1/takedowns", params={"status": status} if status else None)
        return checked_list(answer, "items", _TAKEDOWN_FIELDS, what="takedowns")

    def decide_takedown(
        self, request_id: str, *, decision: str, reason: str, all_versions: bool = False
    ) -> dict[str, Any]:
        """Decide a request (reviewer token): ``uphold`` (revokes), ``reject`` or ``more-info``."""
        body = {"decision": decision, "reason": reason, "all_versions": all_versions}
        url = f"/api/v1/takedowns/{_path_part(request_id)}/decision"
        answer = self._json("POST", url, content=_json_bytes(body), headers=_JSON_HEADERS)
        return checked_texts(answer, _TAKEDOWN_FIELDS, what="takedown decision")

    def add_preview(self, ref: str, image: Path) -> dict[str, Any]:
        """Upload a preview image (PNG, JPEG or WebP) for ``ns/name@version`` (publisher token)."""
        name, version = _split_exact(ref)
        url = f"/api/v1/adapters/{name}/versions/{version}/previews"
        headers = {"Content-Type": "application/octet-stream"}
        return self._json("POST", url, content=image.read_bytes(), headers=headers)

    def previews(self, ref: str) -> list[dict[str, Any]]:
        """The preview images of ``ns/name@version`` (``GET …/previews``), each with its ``url``."""
        name, version = _split_exact(ref)
        items = self._json("GET", f"/api/v1/adapters/{name}/versions/{version}/previews").get("items")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def preview_bytes(self, url: str, *, max_bytes: int = MAX_PREVIEW_DOWNLOAD_BYTES) -> bytes:
        """One preview image by the ``url`` :meth:`previews` listed (a path on this registry).

        Raises:
            RemoteError: the answer is larger than ``max_bytes`` or the request failed.
        """
        if not url.startswith("/"):
            raise errors.RemoteError(f"preview url {url[:80]!r} is not a path on this registry")
        content = self._request("GET", url).content
        if len(content) > max_bytes:
            raise errors.RemoteError(f"preview of {len(content)} bytes exceeds {max_bytes}")
        return content

    # -- publishing -----------------------------------------------------------------------------------
    def publish(self, path: Path, bundle_bytes: bytes, *, progress: Progress | None = None) -> dict[str, Any]:
        """Upload ``path`` (streamed, skipped when the registry has it) then post its signed bundle.

        The blob's digest and the adapter name are taken from the bundle's manifest, which the caller
        signed moments ago; the registry re-checks all of it against the bytes it received.
        """
        sha256, size, name = _publish_target(bundle_bytes)
        self.put_blob(path, sha256=sha256, size=size, progress=progress)
        answer = self._json(
            "POST",
            f"/api/v1/adapters/{name}/versions",
            content=bundle_bytes,
            headers={"Content-Type": "application/json"},
        )
        return checked_summary(answer, what="publish")

    def put_blob(self, path: Path, *, sha256: str, size: int, progress: Progress | None = None) -> None:
        """``PUT`` the file under its digest unless a ``HEAD`` shows the registry already holds it."""
        url = f"/api/v1/blobs/sha256/{sha256}"
        head = self._request("HEAD", url, allow={404, 451}).status_code
        if head == 451:
            raise self._revoked_upload(url, sha256)
        if head == 200:
            if progress is not None:
                progress(size, size)
            return

        def body() -> Iterator[bytes]:
            done = 0
            with path.open("rb") as handle:
                while chunk := handle.read(UPLOAD_CHUNK_BYTES):
                    done += len(chunk)
                    if progress is not None:
                        progress(done, size)
                    yield chunk

        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        self._request("PUT", url, content_factory=body, headers=headers, idempotent=True, upload_bytes=size)

    def _revoked_upload(self, url: str, sha256: str) -> errors.GoneError:
        """The error for bytes a takedown revoked, with the public reason from a GET (HEAD has no body).

        The GET asks for one byte only: should the blob no longer be revoked by then, nothing large moves.
        """
        reason = "the registry gave no reason"
        try:
            self._request("GET", url, headers={"Range": "bytes=0-0"})
        except errors.GoneError as e:
            reason = e.message.partition(_REVOKED_MARK)[2] or reason
        return errors.GoneError(
            f"cannot publish sha256:{sha256}: these bytes were revoked by an upheld takedown and can "
            f"never be published again under any name (public reason: {reason})"
        )

    # -- pulling --------------------------------------------------------------------------------------
    pull = pull  # ``lorareg.client.pull.pull`` as a method: ``client.pull(ref, verify=…, out_dir=…)``

    def verified_revocations(self, trust: TrustStore, *, max_age: timedelta | None) -> RevocationList:
        """Fetch and verify the revocation list, and keep it in the cache for offline use.

        Verified against the trust file's registry keys, the newest version held for this registry
        (rollback) and ``expires`` / ``max_age`` (freeze); the envelope is then stored atomically with its
        version (:meth:`BlobCache.remember_revocation_list`), so the loader and ``lorareg verify`` can use it
        while the registry is unreachable.

        Raises:
            VerificationError: "bad signature", "rollback" or "freeze".
            RemoteError: the registry cannot be reached.
        """
        from lorareg.signing.revocation import verify_revocation_list

        envelope = self.revocations()
        revocations = verify_revocation_list(
            envelope,
            trust.registry_keys(),
            held_version=self.cache.held_revocation_version(self.registry_url),
            now=datetime.now(UTC),
            max_age=max_age,
        )
        self.cache.remember_revocation_list(self.registry_url, envelope, version=revocations.version)
        return revocations


_JSON_HEADERS = {"Content-Type": "application/json"}
_TAKEDOWN_FIELDS = ("id", "status", "ref", "reason")  # what the CLI prints of a takedown request


def _json_bytes(body: Mapping[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode("utf-8")


def _path_part(value: str) -> str:
    """``value`` percent-encoded as one path segment (a tracking id typed by a user)."""
    from urllib.parse import quote

    return quote(value, safe="")


def _param(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _split_exact(ref: str) -> tuple[str, str]:
    name, sep, version = ref.partition("@")
    if not sep or not version or name.count("/") != 1:
        raise errors.InputError(f"expected namespace/name@version, got {ref!r}")
    return _checked_name(name), _checked_version(version)


def _checked_name(name: str) -> str:
    """``name`` if it is a valid ``namespace/adapter`` (the manifest's rule) before it enters a URL."""
    from lorareg.manifest.ids import check_name

    return check_name(name)


def _checked_version(version: str) -> str:
    """``version`` if it is a valid semantic version (the manifest's rule) before it enters a URL."""
    from lorareg.manifest.ids import SemVer

    SemVer.parse(version)
    return version


def _publish_target(bundle_bytes: bytes) -> tuple[str, int, str]:
    """``(sha256, size, name)`` from the manifest inside a bundle the caller just signed."""
    from lorareg.signing.bundle import Bundle
    from lorareg.signing.statement import parse_statement

    statement = parse_statement(Bundle.from_bytes(bundle_bytes).envelope.payload)
    manifest = statement.manifest
    if manifest is None or "name" not in manifest or "size" not in manifest:
        raise errors.InputError(
            "the signature file holds no lorareg manifest with a name and size; re-sign it"
        )
    return statement.resource_digest, int(manifest["size"]), str(manifest["name"])
