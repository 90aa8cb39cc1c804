"""JSON routes of weight fingerprints: the adapters most similar to a version, or to a fingerprint.

``GET /api/v1/adapters/{ns}/{name}/versions/{version}/similar`` answers the top 10 published versions (any
status, so a re-upload of something revoked shows as such) with similarity, coverage and status.
``POST /api/v1/similar`` takes a fingerprint computed by the client (``lorareg similar FILE``: the file never
leaves the machine) as ``application/octet-stream``. Both are public reads, like search. Thin routes over
``lorareg.registry.fingerprints``; included by ``create_app`` when this module exists.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from lorareg.registry import fingerprints
from lorareg.server.deps import RegistryDep
from lorareg.server.streaming import read_capped

MAX_FINGERPRINT_BYTES = 8 * 2**20  # a full SDXL fingerprint is ~250 KB; FLUX with every layer ~1 MB

router = APIRouter(prefix="/api/v1")


@router.get(
    "/adapters/{namespace}/{adapter}/versions/{version}/similar",
    tags=["catalogue"],
    summary="The published versions whose weights are most similar to this one (top 10)",
)
def similar_to_version(namespace: str, adapter: str, version: str, registry: RegistryDep) -> dict[str, Any]:
    name = f"{namespace}/{adapter}"
    fingerprinted, matches = fingerprints.similar_to_version(registry.db, name, version)
    return {
        "ref": f"{name}@{version}",
        "fingerprinted": fingerprinted,
        "similar": [m.to_json() for m in matches],
    }


@router.post(
    "/similar",
    tags=["catalogue"],
    summary="The published versions most similar to a fingerprint (body: lorareg fingerprint bytes)",
    responses={400: {}, 413: {}},
)
async def similar_to_fingerprint(request: Request, registry: RegistryDep) -> dict[str, Any]:
    from lorareg.adapter.fingerprint import Fingerprint

    body = await read_capped(request, cap=MAX_FINGERPRINT_BYTES)
    fp = Fingerprint.from_bytes(body)
    matches = await run_in_threadpool(fingerprints.similar_to, registry.db, fp)
    return {"family": fp.family, "similar": [m.to_json() for m in matches]}
