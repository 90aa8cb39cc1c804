"""``GET /api/docs``: the API's routes as a plain, script-free page rendered from the OpenAPI document.

FastAPI's Swagger UI loaded its script and styles from a CDN without integrity checks and needed an
exception to the Content-Security-Policy. This page is built from ``app.openapi()`` on the server, served
with the same security headers as every other page, and runs no script at all.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from lorareg.server.deps import RegistryDep
from lorareg.server.web import routes as web_routes

router = APIRouter(include_in_schema=False)

_METHODS = ("get", "head", "post", "put", "patch", "delete")


@router.get("/api/docs")
def api_docs(request: Request, registry: RegistryDep) -> Response:
    schema = request.app.openapi()
    context = {"operations": operations(schema), "openapi_version": schema.get("openapi", "3")}
    return web_routes.render(request, registry, "api_docs.html", context, title="HTTP API")


def operations(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per (path, method): summary, parameter names and the statuses it answers."""
    found = []
    for path, item in sorted(schema.get("paths", {}).items()):
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            found.append(
                {
                    "id": op.get("operationId", f"{method}-{path}"),
                    "method": method.upper(),
                    "path": path,
                    "summary": op.get("summary", ""),
                    "parameters": [p["name"] for p in op.get("parameters", []) if "name" in p],
                    "responses": sorted(op.get("responses", {})),
                }
            )
    return found
