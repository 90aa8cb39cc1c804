"""The registry client: the HTTP API over httpx, and ``pull`` into a verified content-addressed cache.

``Client`` speaks ``/api/v1`` (docs/api.md). Idempotent requests (GET, HEAD, the content-addressed blob PUT)
are retried with exponential backoff on transient failures (connection errors, 502/503/504); error answers
become the matching :class:`~lorareg.errors.LoraregError` again (404 → ``NotFoundError``, 409 →
``ConflictError``, 451 → ``GoneError`` …), network failures ``RemoteError``.

``pull`` is the consumer's trust boundary, in this order: (1) resolve the reference; (2) fetch the
signature bundle; (3) fetch the revocation list and verify it (signature, rollback against the newest
version held in the cache, freeze), keep it in the cache, and stop early if the blob is revoked; (4)
download the blob into ``tmp/<hex>.part``, computing while it arrives the one digest the check needs
(BLAKE3 when the signed manifest carries it, else SHA-256; ``lorareg.client.download``) and resuming with
``Range`` after a dropped connection; (5) verify the bundle against the trust file and policy with that
digest and the facts parsed from the header bytes seen during the download (no second pass over the
file); (6) check that the signature covers the content address and names what was asked for; only then
(7) rename into the cache. A cached file is re-hashed and re-verified, revocations included, on every pull.
An unverified pull (``verify=False``) never touches the cache: it downloads into the output directory the
caller must name, beside the signature file, checked only against the registry's SHA-256.
The signature checks themselves live in ``lorareg.signing`` and ``lorareg.signing.revocation``; this module
only orchestrates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from lorareg import errors
from lorareg.client.aliases import checked_alias_target, split_alias
from lorareg.client.answers import (
    checked_detail,
    checked_keys,
    checked_list,
    checked_page,
    checked_summary,
    checked_texts,
)
from lorareg.client.cache import BlobCache
from lorareg.client.limits import MIN_RATE_BYTES_S, SocketWatchdog, TransferDeadline, read_capped
from lorareg.client.logcheck import check_pull
from lorareg.client.pull import (
    PullChecks,
    check_identity,
    digest_plan,
    rehash,
    signed_size,
    unverified_size,
    verify_fetched,
)
from lorareg.errors import LoraregError, RemoteError, VerificationError

if TYPE_CHECKING:
    import ssl

    from lorareg.client.download import Fetched
    from lorareg.client.download_http import OpenBody
    from lorareg.signing.policy import Policy
    from lorareg.signing.revocation import RevocationList
    from lorareg.signing.trust import TrustStore

Progress = Callable[[int, int], None]  # (bytes done, bytes total)

DEFAULT_TIMEOUT_S = 30.0  # connect/read/write timeout of one request
CONNECT_TIMEOUT_S = 10.0
MAX_ATTEMPTS = 4  # tries of an idempotent request (1 + 3 retries)
BACKOFF_BASE_S = 0.25  # first retry delay; doubles each time
UPLOAD_CHUNK_BYTES = 1 * 2**20  # read size when streaming a file to the server
MAX_JSON_BYTES = 16 * 2**20  # an API answer larger than this is refused (streamed: never buffered whole)
MAX_BUNDLE_ANSWER_BYTES = 1 * 2**20  # a signature bundle (lorareg.signing.bundle.MAX_BUNDLE_BYTES)
MAX_REVOCATIONS_BYTES = 16 * 2**20  # a signed revocation list
SIGNATURE_SUFFIX = ".sig"  # an unverified pull's signature file: FILE.sig, where ``lorareg verify`` looks

_RETRY_STATUS = frozenset({502, 503, 504})
_REVOKED_MARK = "was revoked: "  # the server's 451 message puts the public reason after this
_ERRORS_BY_CODE: dict[str, type[LoraregError]] = {
    cls.code: cls
    for cls in (
        errors.InputError,
        errors.PayloadTooLargeError,
        errors.UnprocessableError,
        errors.VerificationError,
        errors.IncompatibleAdapterError,
        errors.AuthError,
        errors.ForbiddenError,
        errors.NotFoundError,
        errors.ConflictError,
        errors.GoneError,
        errors.RateLimitedError,
    )
}
_ERRORS_BY_STATUS: dict[int, type[LoraregError]] = {
    400: errors.InputError,
    401: errors.AuthError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    422: errors.UnprocessableError,
    429: errors.RateLimitedError,
    451: errors.GoneError,
}


MAX_PREVIEW_DOWNLOAD_BYTES = 16 * 2**20  # cleaned previews are a few hundred KiB


class Client:
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
        from lorareg.client.download_http import direct_allowed

        self.registry_url = registry_url.rstrip("/")
        self.cache = BlobCache(cache_dir)
        headers = {"User-Agent": "lorareg-client", "Accept-Encoding": "identity"}  # bodies are capped as sent
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._headers = headers
        self._timeout = timeout
        self._watchdog = SocketWatchdog()
        self._direct_blobs = transport is None and direct_allowed(self.registry_url)
        self._http = httpx.Client(
            base_url=self.registry_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_S)),
            transport=transport,
            follow_redirects=False,
            verify=_tls_settings(self.registry_url) if self._direct_blobs else True,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

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
    def pull(
        self,
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
            return self._pull_unverified(ref, out_dir, progress)
        trust, policy = _trust_and_policy(trust, policy)
        detail, ref = self._resolve_for_pull(ref, trust)
        if on_resolved is not None:
            on_resolved(detail)
        sha256 = str(detail["sha256"])
        bundle = self.signature(detail["name"], detail["version"])
        checks = self._pull_checks(trust, policy, sha256=sha256, ref=ref)
        size = signed_size(bundle, trust=checks.trust, detail=detail, ref=ref)  # bounds the download
        check_pull(self, detail=detail, bundle=bundle, trust=checks.trust)  # in the log, one history
        algorithm, expected = digest_plan(bundle, sha256=sha256, verify=True)
        with self.cache.download_lock(sha256):
            cached = self.cache.lookup(sha256)
            path = cached or self.cache.part_path(sha256)
            if cached is None:
                fetched = self._download(sha256, size, path, algorithm, progress)
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
                    self._discard(path, sha256=sha256, cached=cached is not None)
                raise
            if cached is None:
                path = self.cache.install(sha256, part=path, bundle=bundle)
        return _copy_out(path, detail, out_dir) if out_dir is not None else path

    def _resolve_for_pull(self, ref: str, trust: TrustStore) -> tuple[dict[str, Any], str]:
        """The version detail and the exact ref to check it against; an alias is verified first."""
        named = split_alias(ref)
        if named is None:
            return self.resolve(ref), ref
        name, alias = named
        detail = checked_alias_target(self.alias(name, alias), trust.registry_keys(), name=name, alias=alias)
        return detail, f"{name}@{detail['version']}"

    def _pull_unverified(self, ref: str, out_dir: Path, progress: Progress | None) -> Path:
        """``pull --no-verify``: download into ``out_dir`` only, beside the (unchecked) signature file.

        The part file lives in ``out_dir`` too (hidden, resumed on the next try), so nothing of an
        unverified download ever touches the cache. The SHA-256 computed while downloading must equal the
        content address: that catches a broken transfer, and proves nothing about provenance.
        """
        detail = self.resolve(ref)
        sha256 = str(detail["sha256"])
        bundle = self.signature(detail["name"], detail["version"])
        size = unverified_size(bundle, detail=detail)
        target = _out_path(detail, out_dir)
        part = target.with_name(f".{target.name}.part")
        try:
            fetched = self._download(sha256, size, part, "sha256", progress)
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

    def _pull_checks(
        self, trust: TrustStore | None, policy: Policy | None, *, sha256: str, ref: str
    ) -> PullChecks:
        """Step 3 of ``pull``: trust, policy and the revoked digests; a revoked blob is refused here."""
        trust, policy = _trust_and_policy(trust, policy)
        revocations = self.verified_revocations(trust, max_age=policy.max_revocation_age)
        revoked = {r.sha256: r.reason for r in revocations.revoked}
        if sha256 in revoked:
            listed = f"revocation list version {revocations.version}"
            raise VerificationError(
                [f"revoked: {sha256[:16]}… ({revoked[sha256]}), {listed}"],
                subject=ref,
            )
        return PullChecks(trust, policy, revoked)

    def _download(
        self, sha256: str, size: int, part: Path, algorithm: str, progress: Progress | None
    ) -> Fetched:
        from lorareg.client.download import download_resumable

        deadline = TransferDeadline(grace_s=self._timeout)
        return download_resumable(
            self._blob_opener(f"/api/v1/blobs/sha256/{sha256}", give_up_at=deadline.latest(size)),
            part=part,
            size=size,
            algorithm=algorithm,
            raise_for=_raise_for,
            progress=progress,
            deadline=deadline,
        )

    def _blob_opener(self, path: str, *, give_up_at: float) -> OpenBody:
        """Blob GETs via ``http.client`` where allowed (big reads; ``lorareg.client.download_http``), else
        httpx.

        ``give_up_at`` cuts a direct connection that is still open at the download's deadline.
        """
        from lorareg.client.download_http import open_direct, open_httpx

        fixed = {**self._headers, "Accept-Encoding": "identity"}  # the stored bytes, never re-encoded
        if self._direct_blobs:
            url = self.registry_url + path
            return lambda extra: open_direct(
                url, {**fixed, **extra}, timeout=self._timeout, give_up_at=give_up_at
            )
        return lambda extra: open_httpx(self._http, path, {**fixed, **extra})

    def _discard(self, path: Path, *, sha256: str, cached: bool) -> None:
        """Remove a file that failed: a part file always, a cached file when its bytes changed."""
        if cached:
            self.cache.evict(sha256)
        else:
            path.unlink(missing_ok=True)

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

    # -- HTTP plumbing ----------------------------------------------------------------------------------
    def _json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, url, **kwargs)  # capped at MAX_JSON_BYTES as it streams
        try:
            data = response.json()
        except ValueError as e:
            raise RemoteError(
                f"registry answered {url} with non-JSON ({e})", status=response.status_code
            ) from e
        if not isinstance(data, dict):
            raise RemoteError(f"registry answered {url} with JSON {type(data).__name__}; expected an object")
        return data

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        content_factory: Callable[[], Iterator[bytes]] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        allow: frozenset[int] | set[int] = frozenset(),
        cap: int = MAX_JSON_BYTES,
        upload_bytes: int = 0,
    ) -> httpx.Response:
        """Send one request with retries (idempotent ones only) and map error answers to LoraregError.

        The answer's body is streamed into a buffer capped at ``cap`` bytes, under a
        :class:`~lorareg.client.limits.TransferDeadline` (``lorareg.client.limits``).
        """
        retry_all = method in ("GET", "HEAD") if idempotent is None else idempotent
        for attempt in range(1, MAX_ATTEMPTS + 1):
            body = content_factory() if content_factory is not None else content
            try:
                response = self._send(
                    method, url, params=params, content=body, headers=headers, cap=cap, upload=upload_bytes
                )
            except httpx.TransportError as e:
                if attempt < MAX_ATTEMPTS and (retry_all or isinstance(e, httpx.ConnectError)):
                    time.sleep(BACKOFF_BASE_S * 2 ** (attempt - 1))
                    continue
                raise RemoteError(f"{method} {self.registry_url}{url} failed: {type(e).__name__}: {e}") from e
            if response.status_code in _RETRY_STATUS and retry_all and attempt < MAX_ATTEMPTS:
                time.sleep(BACKOFF_BASE_S * 2 ** (attempt - 1))
                continue
            if response.status_code not in allow:
                _raise_for(response)
            return response
        raise AssertionError("unreachable: the loop returns or raises")

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None,
        content: bytes | Iterator[bytes] | None,
        headers: Mapping[str, str] | None,
        cap: int,
        upload: int,
    ) -> httpx.Response:
        """One request; the answer's body read capped and in time, returned as a complete response.

        The answer must start (status and headers) within the grace period plus the upload's ``upload``
        bytes (or ``content``) at the minimum rate, else the watchdog cuts the connection.
        """
        deadline = TransferDeadline(grace_s=self._timeout)
        try:
            request = self._http.build_request(
                method,
                url,
                params=params,
                content=content,
                headers=headers,
                extensions={"trace": self._watchdog.trace},
            )
        except httpx.InvalidURL as e:  # a NUL or other character no URL may hold
            raise RemoteError(f"cannot request {url!r}: {e}") from e
        sending = upload or (len(content) if isinstance(content, bytes) else 0)
        with self._watchdog.armed(deadline.latest(sending)) as cut:
            try:
                streamed = self._http.send(request, stream=True)
            except httpx.TransportError as e:
                if cut.is_set():
                    raise RemoteError(
                        f"{method} {url}: the registry did not answer within {self._timeout:g} s "
                        f"(plus the upload at {MIN_RATE_BYTES_S // 1024} KiB/s)"
                    ) from e
                raise
        try:
            # A HEAD answer's Content-Length is the blob's size, and it has no body to read.
            what = f"{method} {url}"
            reading = TransferDeadline(grace_s=self._timeout)  # the body's own clock: the upload is over
            data = b"" if method == "HEAD" else read_capped(streamed, cap=cap, deadline=reading, what=what)
        finally:
            streamed.close()
        return httpx.Response(streamed.status_code, headers=streamed.headers, content=data, request=request)


def _tls_settings(registry_url: str) -> ssl.SSLContext | bool:
    """httpx's ``verify`` for a registry reached without a proxy: the default (CA bundle) for https.

    A plain-http registry reached directly never uses TLS (every request is relative to it and redirects
    are not followed), so it gets a client context with no CA loaded: that skips loading the CA bundle,
    about 35 ms of every command's start, and any TLS use would fail verification rather than pass.
    """
    if not registry_url.startswith("http://"):
        return True
    import ssl

    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED, check_hostname: fail closed


def _raise_for(response: httpx.Response) -> None:
    """Raise the LoraregError that matches an error answer; return for 1xx-3xx."""
    status = response.status_code
    if status < 400:
        return
    code, message = _error_body(response)
    cls = _ERRORS_BY_CODE.get(code or "") or _ERRORS_BY_STATUS.get(status)
    if status >= 500 or cls is None:
        raise RemoteError(f"registry answered {status}: {message}", status=status, remote_code=code)
    if issubclass(cls, (errors.VerificationError, errors.IncompatibleAdapterError)):
        raise cls(message.split("; "))
    raise cls(message)


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    try:
        if not response.is_closed:
            response.read()
        error = response.json()["error"]
        return str(error["code"]), str(error["message"])
    except (ValueError, KeyError, TypeError, httpx.HTTPError):
        return None, f"HTTP {response.status_code} {response.reason_phrase}".strip()


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


def _trust_and_policy(trust: TrustStore | None, policy: Policy | None) -> tuple[TrustStore, Policy]:
    """Fill in the default trust file and its policy where the caller gave none."""
    from lorareg.signing.trust import load_trust

    store = load_trust(None) if trust is None else trust
    return store, policy if policy is not None else store.policy
