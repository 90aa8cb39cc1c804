"""JSON routes of the takedown workflow and of preview images, under ``/api/v1``: thin over the services.

- ``POST /api/v1/takedowns`` (anyone, rate-limited) files a request; ``GET /api/v1/takedowns/{id}`` is its
  public status. Reviewers (bearer token with scope ``review``): ``GET /api/v1/takedowns[?status=]``,
  ``POST /api/v1/takedowns/{id}/decision``, ``GET /api/v1/takedowns/audit[?request_id=]``.
- ``POST …/versions/{version}/previews`` (publisher of the namespace; raw image body) adds a preview image;
  ``GET …/previews`` lists them.

CSRF: a POST here either needs a bearer header (which browsers never attach on their own) or, for the
anonymous filing route, ``Content-Type: application/json`` (which a cross-site HTML form cannot send
without a CORS preflight this server never grants); anything else is answered 403.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from lorareg.registry import MAX_PREVIEW_UPLOAD_BYTES, Previews, Takedowns
from lorareg.server.deps import PrincipalDep, RegistryDep, SettingsDep
from lorareg.server.guard import public_link
from lorareg.server.json_body import read_json
from lorareg.server.streaming import read_capped
from lorareg.server.upload_limits import upload_slots

router = APIRouter(prefix="/api/v1")

MAX_JSON_BODY_BYTES = 64 * 2**10  # a takedown request or decision is a few KiB at most


class TakedownIn(BaseModel):
    """A takedown request as the API accepts it: strict JSON types, no unknown fields."""

    model_config = ConfigDict(extra="forbid", strict=True)

    ref: str
    reason: Literal["likeness", "character", "style", "license", "other"]
    claimant: str
    contact: str
    details: str
    good_faith: bool = False


class DecisionIn(BaseModel):
    """A reviewer's decision: the reason is public (shown on the status page and in 451 answers)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    decision: Literal["uphold", "reject", "more-info"]
    reason: str
    all_versions: bool = False


@router.post("/takedowns", status_code=201, tags=["takedowns"], summary="File a takedown request (anyone)")
async def file_takedown(request: Request, registry: RegistryDep, settings: SettingsDep) -> JSONResponse:
    body = await read_json(request, TakedownIn, cap=MAX_JSON_BODY_BYTES)
    record = await run_in_threadpool(
        Takedowns(registry).file,
        ref=body.ref,
        reason=body.reason,
        claimant=body.claimant,
        contact=body.contact,
        details=body.details,
        good_faith=body.good_faith,
        client=client_address(request),
    )
    status_url = public_link(settings.public_url, f"/api/v1/takedowns/{record.id}")
    return JSONResponse({**record.to_public_json(), "status_url": status_url}, status_code=201)


@router.get("/takedowns", tags=["takedowns"], summary="The review queue (reviewers)")
def list_takedowns(
    registry: RegistryDep, principal: PrincipalDep, status: str | None = None
) -> dict[str, Any]:
    items = Takedowns(registry).list_requests(principal=principal, status=status)
    return {"items": [r.to_json() for r in items]}


@router.get("/takedowns/audit", tags=["takedowns"], summary="The append-only audit log (reviewers)")
def audit_log(
    registry: RegistryDep, principal: PrincipalDep, request_id: str | None = None
) -> dict[str, Any]:
    events = Takedowns(registry).events(principal=principal, request_id=request_id)
    return {"events": [e.to_json() for e in events]}


@router.get("/takedowns/{request_id}", tags=["takedowns"], summary="Public status of a takedown request")
def takedown_status(request_id: str, registry: RegistryDep) -> dict[str, Any]:
    return Takedowns(registry).get(request_id).to_public_json()


@router.post("/takedowns/{request_id}/decision", tags=["takedowns"], summary="Decide a request (reviewers)")
async def decide_takedown(
    request_id: str, request: Request, registry: RegistryDep, principal: PrincipalDep
) -> Any:
    body = await read_json(request, DecisionIn, cap=MAX_JSON_BODY_BYTES)
    record = await run_in_threadpool(
        Takedowns(registry).decide,
        request_id,
        decision=body.decision,
        reason=body.reason,
        principal=principal,
        all_versions=body.all_versions,
    )
    return record.to_json()


@router.post(
    "/adapters/{namespace}/{adapter}/versions/{version}/previews",
    status_code=201,
    tags=["publishing"],
    summary="Add a preview image (PNG, JPEG or WebP; raw body) to a version",
)
async def add_preview(
    namespace: str,
    adapter: str,
    version: str,
    request: Request,
    registry: RegistryDep,
    principal: PrincipalDep,
    settings: SettingsDep,
) -> JSONResponse:
    with upload_slots(request).claim(principal.token_id):
        data = await read_capped(request, cap=MAX_PREVIEW_UPLOAD_BYTES)
    record = await run_in_threadpool(
        Previews(registry).add, f"{namespace}/{adapter}", version, data, principal=principal
    )
    return JSONResponse(record.to_json(), status_code=201)


@router.get(
    "/adapters/{namespace}/{adapter}/versions/{version}/previews",
    tags=["catalogue"],
    summary="The preview images of a version",
)
def list_previews(namespace: str, adapter: str, version: str, registry: RegistryDep) -> dict[str, Any]:
    registry.get_version(f"{namespace}/{adapter}", version)  # 404 for a version that does not exist
    items = Previews(registry).for_version(f"{namespace}/{adapter}", version)
    return {"items": [p.to_json() for p in items]}


def client_address(request: Request) -> str:
    """The client's address as the rate limit counts it (the proxy's, unless uvicorn trusts its headers)."""
    return request.client.host if request.client is not None else "unknown"
