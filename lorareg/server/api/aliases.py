"""JSON routes for pipeline aliases under ``/api/v1/adapters/{ns}/{name}/aliases``: thin over ``Aliases``.

- ``GET …/aliases`` lists an adapter's aliases; ``GET …/aliases/{alias}`` gives one alias, its signed move
  and the version it names (``target``, as the version detail route gives it) read in one snapshot, which
  is what ``pull ns/name@prod`` uses to check the registry's signature on the move.
- ``PUT …/aliases/{alias}`` with ``{"version": "2.1.0"}`` moves it; ``DELETE …/aliases/{alias}`` removes
  it (publishers of the namespace and admins; bearer token). Both answer with the alias record.

``ns/name@alias`` is accepted wherever a version is (``/api/v1/resolve``, version detail): the service
resolves it, these routes only manage it. A PUT takes ``Content-Type: application/json`` only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from lorareg.registry import Aliases
from lorareg.server.api.adapters import version_json
from lorareg.server.deps import PrincipalDep, RegistryDep, SettingsDep
from lorareg.server.json_body import read_json

router = APIRouter(prefix="/api/v1/adapters/{namespace}/{adapter}/aliases", tags=["aliases"])

MAX_ALIAS_BODY_BYTES = 4 * 2**10  # {"version": "…"} is a few dozen bytes


class AliasIn(BaseModel):
    """The body of a move: the exact version the alias should name."""

    version: str


@router.get("", summary="An adapter's aliases (prod, staging, …)")
def list_aliases(namespace: str, adapter: str, registry: RegistryDep) -> dict[str, Any]:
    return {"aliases": [a.to_json() for a in Aliases(registry).of(f"{namespace}/{adapter}")]}


@router.get("/{alias}", summary="One alias, its registry-signed move and the version it names")
def get_alias(
    namespace: str, adapter: str, alias: str, request: Request, registry: RegistryDep, settings: SettingsDep
) -> dict[str, Any]:
    record, version = Aliases(registry).resolve(f"{namespace}/{adapter}", alias)
    return {**record.to_json(), "target": version_json(version, request, settings.public_url)}


@router.put("/{alias}", summary="Point an alias at a version (publishers of the namespace, admins)")
async def set_alias(
    namespace: str, adapter: str, alias: str, request: Request, registry: RegistryDep, principal: PrincipalDep
) -> dict[str, Any]:
    body = await read_json(request, AliasIn, cap=MAX_ALIAS_BODY_BYTES)
    record = await run_in_threadpool(
        Aliases(registry).set, f"{namespace}/{adapter}", alias, body.version, principal=principal
    )
    return record.to_json()


@router.delete("/{alias}", summary="Remove an alias (publishers of the namespace, admins)")
def delete_alias(
    namespace: str, adapter: str, alias: str, registry: RegistryDep, principal: PrincipalDep
) -> dict[str, Any]:
    return Aliases(registry).delete(f"{namespace}/{adapter}", alias, principal=principal).to_json()
