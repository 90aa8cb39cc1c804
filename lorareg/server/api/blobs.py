"""Blob routes: ``PUT`` streams an upload into the registry; ``GET``/``HEAD`` stream a blob out with ranges.

Uploads never sit in memory: the body is read chunk by chunk (``streaming.capped_body``) and handed to
:meth:`Registry.upload_blob` in a worker thread, which hashes, writes a pending blob and commits it only
when the SHA-256 matches the URL. Downloads are content-addressed and immutable, so the ``ETag`` is the
digest itself and caches may keep them forever; a revoked digest is answered 451 with the public reason.
With ``LORAREG_BLOB_OFFLOAD=x-accel`` (nginx) or ``x-sendfile`` (Apache, lighttpd) lorareg still decides
every request — 404, 451, 304 — and then hands the byte stream to the front proxy, which serves the file with
sendfile and applies ``Range`` itself (``docs/deployment.md`` has the nginx configuration). With
``s3-redirect`` a GET is answered 307 to a short-lived presigned URL of the S3 store.
This module does not decide anything about digests, revocation or auth beyond calling the service.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from lorareg.errors import GoneError, StorageError
from lorareg.registry import BlobRecord, Registry
from lorareg.server.blob_stream import BlobFileResponse
from lorareg.server.config import PRESIGNED_URL_TTL_S, Settings
from lorareg.server.deps import PrincipalDep, RegistryDep, SettingsDep, optional_principal
from lorareg.server.errors import error_response
from lorareg.server.streaming import ByteRange, RangeNotSatisfiable, capped_body, parse_range, run_with_body
from lorareg.server.upload_limits import upload_slots

router = APIRouter(prefix="/blobs", tags=["blobs"])

_IMMUTABLE = "public, max-age=31536000, immutable"


@router.put(
    "/sha256/{digest}",
    status_code=201,
    summary="Upload an adapter file under its SHA-256 (raw body, streamed)",
    responses={200: {"description": "already stored"}, 413: {}, 422: {}, 451: {}},
)
async def put_blob(
    digest: str, request: Request, registry: RegistryDep, principal: PrincipalDep, settings: SettingsDep
) -> JSONResponse:
    """Stream the body into the store; 201 when stored now, 200 when it already was."""
    cap = settings.max_upload_bytes
    slots = upload_slots(request)

    def consume(chunks: Iterator[bytes]) -> tuple[BlobRecord, bool]:
        return registry.upload_blob(digest, chunks, principal=principal, max_bytes=cap)

    with slots.claim(principal.token_id):  # 429 before a byte of the body is read
        body = capped_body(request, cap=cap, chunk_bytes=settings.chunk_bytes)
        record, created = await run_with_body(consume, body, limiter=slots.limiter)
    return JSONResponse(
        record.to_json(),
        status_code=201 if created else 200,
        headers={"Location": f"/api/v1/blobs/sha256/{record.sha256}"},
    )


@router.api_route(
    "/sha256/{digest}",
    methods=["GET", "HEAD"],
    summary="Download a blob (Range, ETag; 451 when revoked; unpublished blobs only to their uploader)",
    response_class=StreamingResponse,
    responses={206: {"description": "partial content"}, 304: {}, 416: {}, 451: {}},
)
def get_blob(digest: str, request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    """Stream the blob, or the single ``Range`` asked for; ``HEAD`` answers the headers only."""
    blob = registry.readable_blob(digest, reader=optional_principal(request, registry))
    reason = registry.is_revoked(blob.sha256)
    if reason is not None:
        raise GoneError(f"blob sha256:{blob.sha256} was revoked: {reason}")
    etag = f'"sha256:{blob.sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "Cache-Control": _IMMUTABLE}
    if _none_match_fails(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if settings.blob_offload == "s3-redirect" and request.method == "GET":
        return _redirected(registry, blob)
    if settings.blob_offload in ("x-accel", "x-sendfile"):
        return _offloaded(registry, blob, settings=settings, headers=headers)
    try:
        wanted = _wanted_range(request, etag=etag, size=blob.size)
    except RangeNotSatisfiable:
        response = error_response(416, "range_not_satisfiable", f"blob has {blob.size} bytes; range refused")
        response.headers["Content-Range"] = f"bytes */{blob.size}"
        return response
    span = wanted or ByteRange(0, blob.size)
    headers["Content-Length"] = str(span.length)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = wanted.content_range(blob.size)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    located = registry.blob_file(blob.sha256)
    if located is not None:
        return BlobFileResponse(
            located[1],
            span.start,
            span.end,
            whole_file=wanted is None,
            chunk_bytes=settings.chunk_bytes,
            status_code=status,
            headers=headers,
        )
    return StreamingResponse(
        _chunks(registry, blob.sha256, span),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


def _offloaded(
    registry: Registry, blob: BlobRecord, *, settings: Settings, headers: dict[str, str]
) -> Response:
    """An empty answer that tells the front proxy which file to stream (it adds ``Range`` handling)."""
    located = registry.blob_file(blob.sha256)
    if located is None:
        raise StorageError("blob offload needs the filesystem blob store; S3 stores serve their own bytes")
    root, path = located
    if settings.blob_offload == "x-accel":
        headers["X-Accel-Redirect"] = settings.x_accel_prefix + path.relative_to(root).as_posix()
    else:
        headers["X-Sendfile"] = str(path)
    return Response(status_code=200, headers=headers, media_type="application/octet-stream")


def _redirected(registry: Registry, blob: BlobRecord) -> Response:
    """307 to a presigned store URL: the bytes leave the app server's data path (the client verifies them)."""
    url = registry.blob_redirect(blob.sha256, expires_s=PRESIGNED_URL_TTL_S)
    if url is None:
        raise StorageError("LORAREG_BLOB_OFFLOAD=s3-redirect needs the S3 blob store")
    return Response(status_code=307, headers={"Location": url, "Cache-Control": "no-store"})


def _none_match_fails(header: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: ``*`` or any listed tag (weak comparison) matching the blob means 304."""
    if header is None:
        return False
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return "*" in tags or etag in tags


def _wanted_range(request: Request, *, etag: str, size: int) -> ByteRange | None:
    """The range to send; an ``If-Range`` that names another representation means the whole body."""
    if_range = request.headers.get("if-range")
    if if_range is not None and if_range.strip() != etag:
        return None
    return parse_range(request.headers.get("range"), size)


def _chunks(registry: Registry, sha256: str, span: ByteRange) -> Iterator[bytes]:
    """The store's chunks of ``span`` (end exclusive); Starlette iterates them in a worker thread."""
    yield from registry.store.open_range(sha256, span.start, span.end)
