"""JSON API routes under ``/api/v1`` (and ``/healthz``): thin wrappers over :class:`Registry`.

Each route parses its inputs, calls one service method and returns the record's ``to_json()``; the only
things added here are URLs (``blob_url``, ``signature_url``), HTTP framing, and the check of enum filters
(``family``, ``consent_subject``, ``consent_status``: 400 naming the allowed values, like ``sort``, rather
than an empty page that looks like "no such adapters"). Errors are raised by the service as
``LoraregError`` and turned into ``{"error": {"code", "message"}}`` by ``server/errors.py``.
Blob transfer lives in ``server/api/blobs.py``; the web UI, when present, in ``server/web/routes.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from lorareg.adapter.facts.model import FAMILIES
from lorareg.errors import InputError
from lorareg.manifest.model import CONSENT_STATUSES, CONSENT_SUBJECTS
from lorareg.registry import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, SearchQuery, VersionRecord
from lorareg.server.api import blobs
from lorareg.server.deps import PrincipalDep, RegistryDep, SettingsDep
from lorareg.server.guard import MAX_DB_INT, public_link
from lorareg.server.streaming import read_capped
from lorareg.server.upload_limits import upload_slots

router = APIRouter()
v1 = APIRouter(prefix="/api/v1")

DSSE_MEDIA_TYPE = "application/json"
LogIndex = Annotated[int, Query(ge=0, le=MAX_DB_INT)]  # the log's idx column is a 32-bit INTEGER
CHECKPOINT_MEDIA_TYPE = "text/plain; charset=utf-8"


@router.get("/healthz", tags=["meta"], summary="Liveness: the process answers and the database is reachable")
def healthz(registry: RegistryDep) -> dict[str, str]:
    registry.keys()  # touches the database; raises StorageError (500) when it is gone
    return {"status": "ok"}


@v1.get("/keys", tags=["meta"], summary="The registry's public signing keys")
def keys(registry: RegistryDep) -> dict[str, Any]:
    return {"keys": registry.keys()}


@v1.get(
    "/keys/chain", tags=["meta"], summary="Key-set documents of every registry key rotation, oldest first"
)
def key_chain(registry: RegistryDep) -> dict[str, Any]:
    return {"keysets": [document.decode("utf-8") for document in registry.key_chain()]}


@v1.get("/adapters", tags=["catalogue"], summary="Search active versions (keyset pagination)")
def search(
    registry: RegistryDep,
    q: str | None = None,
    family: str | None = None,
    license: str | None = None,  # noqa: A002 - the public query parameter name
    commercial_use: bool | None = None,
    consent_subject: str | None = None,
    consent_status: str | None = None,
    creator: str | None = None,
    unreviewed: bool | None = None,
    namespace: str | None = None,
    sort: Literal["newest", "name"] = "newest",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_LIMIT)] = DEFAULT_PAGE_LIMIT,
) -> dict[str, Any]:
    query = SearchQuery(
        text=q or None,
        family=_one_of(family, FAMILIES, "family"),
        license=license,
        commercial_use=commercial_use,
        consent_subject=_one_of(consent_subject, CONSENT_SUBJECTS, "consent_subject"),
        consent_status=_one_of(consent_status, CONSENT_STATUSES, "consent_status"),
        creator=creator,
        unreviewed=unreviewed,
        namespace=namespace or None,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    return registry.search(query).to_json()


@v1.get("/adapters/{namespace}/{adapter}", tags=["catalogue"], summary="An adapter with all its versions")
def get_adapter(namespace: str, adapter: str, registry: RegistryDep) -> dict[str, Any]:
    return registry.get_adapter(f"{namespace}/{adapter}").to_json()


@v1.post(
    "/adapters/{namespace}/{adapter}/versions",
    status_code=201,
    tags=["publishing"],
    summary="Publish a version: body is the signed bundle JSON; upload the blob first",
    responses={403: {}, 409: {}, 413: {}, 422: {}, 451: {}},
)
async def publish(
    namespace: str,
    adapter: str,
    request: Request,
    registry: RegistryDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> JSONResponse:
    with upload_slots(request).claim(principal.token_id):
        bundle = await read_capped(request, cap=settings.max_bundle_bytes)
    record = await run_in_threadpool(registry.publish, f"{namespace}/{adapter}", bundle, principal=principal)
    return JSONResponse(version_json(record, request, settings.public_url), status_code=201)


@v1.get("/adapters/{namespace}/{adapter}/versions/{version}", tags=["catalogue"], summary="Version detail")
def get_version(
    namespace: str, adapter: str, version: str, request: Request, registry: RegistryDep, settings: SettingsDep
) -> dict[str, Any]:
    record = registry.get_version(f"{namespace}/{adapter}", version)
    return version_json(record, request, settings.public_url)


@v1.get(
    "/adapters/{namespace}/{adapter}/versions/{version}/signature",
    tags=["catalogue"],
    summary="The countersigned Sigstore bundle of a version, byte for byte",
)
def get_signature(namespace: str, adapter: str, version: str, registry: RegistryDep) -> Response:
    record = registry.get_version(f"{namespace}/{adapter}", version)
    return Response(record.bundle, media_type=DSSE_MEDIA_TYPE)


@v1.post("/adapters/{namespace}/{adapter}/versions/{version}/yank", tags=["publishing"], summary="Yank")
def yank(
    namespace: str,
    adapter: str,
    version: str,
    request: Request,
    registry: RegistryDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    record = registry.yank(f"{namespace}/{adapter}", version, principal=principal)
    return version_json(record, request, settings.public_url)


@v1.post("/adapters/{namespace}/{adapter}/versions/{version}/unyank", tags=["publishing"], summary="Unyank")
def unyank(
    namespace: str,
    adapter: str,
    version: str,
    request: Request,
    registry: RegistryDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    record = registry.unyank(f"{namespace}/{adapter}", version, principal=principal)
    return version_json(record, request, settings.public_url)


@v1.get("/resolve", tags=["catalogue"], summary="Resolve ns/name, ns/name@version or any of the six hashes")
def resolve(ref: str, request: Request, registry: RegistryDep, settings: SettingsDep) -> dict[str, Any]:
    return version_json(registry.resolve(ref), request, settings.public_url)


@v1.get("/revocations", tags=["trust"], summary="The current signed revocation list (DSSE envelope)")
def revocations(registry: RegistryDep) -> Response:
    return Response(
        registry.revocation_list(), media_type=DSSE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"}
    )


@v1.get("/log/head", tags=["transparency"], summary="A signed tree head (DSSE envelope)")
def log_head(registry: RegistryDep) -> Response:
    return Response(registry.log_head(), media_type=DSSE_MEDIA_TYPE, headers={"Cache-Control": "no-cache"})


@v1.get("/log/checkpoint", tags=["transparency"], summary="The log's checkpoint (C2SP signed note)")
def log_checkpoint(request: Request, registry: RegistryDep, settings: SettingsDep) -> Response:
    origin = log_origin(settings.public_url or str(request.base_url))
    return Response(
        registry.log_checkpoint(origin),
        media_type=CHECKPOINT_MEDIA_TYPE,
        headers={"Cache-Control": "no-cache"},
    )


@v1.get(
    "/log/evidence",
    tags=["transparency"],
    summary="Checkpoint, leaf index with its inclusion proof and consistency from size since, one snapshot",
)
def log_evidence(
    index: int, request: Request, registry: RegistryDep, settings: SettingsDep, since: int = 0
) -> dict[str, Any]:
    origin = log_origin(settings.public_url or str(request.base_url))
    return registry.log_evidence(origin, index=index, since=since)


@v1.get("/log/inclusion", tags=["transparency"], summary="Inclusion proof of leaf index in tree_size")
def log_inclusion(index: LogIndex, tree_size: LogIndex, registry: RegistryDep) -> dict[str, Any]:
    return registry.log_inclusion(index, tree_size).to_json()


@v1.get("/log/consistency", tags=["transparency"], summary="Consistency proof between two tree sizes")
def log_consistency(first: LogIndex, second: LogIndex, registry: RegistryDep) -> dict[str, Any]:
    return registry.log_consistency(first, second).to_json()


@v1.get("/log/entries", tags=["transparency"], summary="Leaves start (inclusive) to end (exclusive)")
def log_entries(start: LogIndex, end: LogIndex, registry: RegistryDep) -> dict[str, Any]:
    return {"entries": [entry.to_json() for entry in registry.log_entries(start, end)]}


def version_json(record: VersionRecord, request: Request, public_url: str | None) -> dict[str, Any]:
    """A version's JSON with ``blob_url`` and ``signature_url`` added.

    Absolute under ``LORAREG_PUBLIC_URL`` when it is set, else relative to the registry: never built from
    the request's ``Host`` header, which the client chooses (a poisoned cache would point elsewhere).
    """
    return {
        **record.to_json(),
        "blob_url": public_link(public_url, f"/api/v1/blobs/sha256/{record.sha256}"),
        "signature_url": public_link(
            public_url, f"/api/v1/adapters/{record.name}/versions/{record.version}/signature"
        ),
    }


def log_origin(base_url: str) -> str:
    """The checkpoint origin: the registry's public URL without scheme or trailing slash (C2SP advice)."""
    return base_url.split("://", 1)[-1].rstrip("/") or "lorareg"


def _one_of(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    """A filter value checked against its enum: an unknown one is a typo to report (400), not "no hits"."""
    if not value or value in allowed:
        return value or None  # blank means "any", as ``q`` does
    raise InputError(f"{name} {value[:80]!r} is not one of: {', '.join(allowed)}")


v1.include_router(blobs.router)
router.include_router(v1)
