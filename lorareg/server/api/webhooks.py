"""JSON routes for webhooks under ``/api/v1/webhooks``: thin over ``lorareg.registry.Webhooks``.

- ``POST /api/v1/webhooks`` ``{"url", "events": [...], "namespace"?}`` (admins; publishers for their
  namespace) → 201 with the hook and its ``secret``, shown this once.
- ``GET /api/v1/webhooks`` — the hooks the token may manage; ``DELETE /api/v1/webhooks/{id}``.
- ``GET /api/v1/webhooks/{id}/deliveries`` — the delivery log (each attempt with its HTTP status);
  ``POST /api/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver`` queues the event again.

Every route needs a bearer token; bodies are ``application/json`` only (no cross-site form can post them).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from lorareg.server.deps import PrincipalDep, RegistryDep, SettingsDep
from lorareg.server.json_body import read_json
from lorareg.server.webhook_worker import webhooks_for

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

MAX_WEBHOOK_BODY_BYTES = 8 * 2**10


class WebhookIn(BaseModel):
    """A hook registration."""

    url: str
    events: list[str]
    namespace: str | None = None


@router.post("", status_code=201, summary="Register a webhook; the answer holds its secret, shown once")
async def add_webhook(
    request: Request, registry: RegistryDep, principal: PrincipalDep, settings: SettingsDep
) -> JSONResponse:
    body = await read_json(request, WebhookIn, cap=MAX_WEBHOOK_BODY_BYTES)
    hooks = webhooks_for(registry, settings)
    record, secret = await run_in_threadpool(
        hooks.add, body.url, body.events, namespace=body.namespace, principal=principal
    )
    return JSONResponse({**record.to_json(), "secret": secret}, status_code=201)


@router.get("", summary="The webhooks this token may manage")
def list_webhooks(registry: RegistryDep, principal: PrincipalDep, settings: SettingsDep) -> dict[str, Any]:
    return {"webhooks": [h.to_json() for h in webhooks_for(registry, settings).of(principal)]}


@router.delete("/{hook_id}", summary="Delete a webhook (no new deliveries)")
def delete_webhook(
    hook_id: str, registry: RegistryDep, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    return webhooks_for(registry, settings).delete(hook_id, principal=principal).to_json()


@router.get("/{hook_id}/deliveries", summary="A webhook's delivery log, newest first")
def deliveries(
    hook_id: str, registry: RegistryDep, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    items = webhooks_for(registry, settings).deliveries(hook_id, principal=principal)
    return {"deliveries": [d.to_json() for d in items]}


@router.post(
    "/{hook_id}/deliveries/{delivery_id}/redeliver", status_code=201, summary="Queue a delivery's event again"
)
def redeliver(
    hook_id: str, delivery_id: int, registry: RegistryDep, principal: PrincipalDep, settings: SettingsDep
) -> dict[str, Any]:
    return webhooks_for(registry, settings).redeliver(hook_id, delivery_id, principal=principal).to_json()
