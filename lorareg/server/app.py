"""The application factory: ``create_app(settings)`` wires settings, the registry service and the routes.

Nothing is built at import time, so tests and replicas make as many independent apps as they like. Every
router is wired here by name (the JSON API of ``server/api/`` and the pages of ``server/web/``): a missing
feature is an import error at start-up, never a silently absent route. Every request
gets one access-log line (logger ``lorareg.access``): method, path without the query string (a query might
carry a secret), status (500 for a crash), duration and bytes in/out; control characters are escaped
(``log_text.log_safe``) so a path cannot forge a second line. This module holds no route logic.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from lorareg import __version__
from lorareg.errors import InputError
from lorareg.registry import Registry
from lorareg.server import webhook_worker
from lorareg.server.api import adapters as adapters_api
from lorareg.server.api import aliases as aliases_api
from lorareg.server.api import device as device_api
from lorareg.server.api import similar as similar_api
from lorareg.server.api import takedowns as takedowns_api
from lorareg.server.api import webhooks as webhooks_api
from lorareg.server.config import Settings
from lorareg.server.errors import install_error_handlers
from lorareg.server.guard import InputGuardMiddleware
from lorareg.server.log_text import log_safe
from lorareg.server.openapi import install_openapi
from lorareg.server.read_access import ReadAccessMiddleware
from lorareg.server.upload_limits import UploadSlots
from lorareg.server.web import access as web_access
from lorareg.server.web import api_docs
from lorareg.server.web import device as web_device
from lorareg.server.web import routes as web_routes
from lorareg.server.web import sso as web_sso

access_log = logging.getLogger("lorareg.access")


def create_app(settings: Settings, *, registry: Registry | None = None) -> FastAPI:
    """Build the ASGI app for ``settings``; ``registry`` overrides the one opened from the settings."""
    app = FastAPI(
        title="lorareg",
        version=__version__,
        summary="Registry and provenance for LoRA adapters: signed manifests, verified pulls.",
        docs_url=None,  # /api/docs is web/api_docs.py: a script-free page with the security headers
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.registry = registry if registry is not None else open_registry_for(settings)
    _check_offload(settings, app.state.registry)
    app.state.upload_slots = UploadSlots(
        total=settings.max_concurrent_uploads, per_token=settings.max_uploads_per_token
    )
    install_error_handlers(app)
    install_openapi(app)
    webhook_worker.install(app)  # sends queued webhook deliveries while the app runs
    app.include_router(adapters_api.router)
    app.include_router(aliases_api.router)
    app.include_router(webhooks_api.router)
    app.include_router(takedowns_api.router)
    app.include_router(similar_api.router)
    app.include_router(device_api.router)  # lorareg login (RFC 8628)
    app.include_router(web_routes.router)
    app.include_router(api_docs.router)
    app.add_middleware(InputGuardMiddleware)  # innermost: before routing, inside the headers and the log
    app.include_router(web_access.router)
    app.include_router(web_sso.router)
    app.include_router(web_device.router)  # /device: approve a lorareg login
    for middleware in web_routes.MIDDLEWARE:  # the web UI's security headers (CSP)
        app.add_middleware(middleware)
    app.add_middleware(ReadAccessMiddleware)  # LORAREG_READ=signed-in: no anonymous reads (docs/studio.md)
    app.add_middleware(AccessLogMiddleware)
    if settings.trusted_proxies:  # outermost: the client address is settled before anything reads it
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    return app


def _check_offload(settings: Settings, registry: Registry) -> None:
    """Refuse at start a blob offload mode that the configured store cannot serve (one line saying why)."""
    local = registry.blob_file("0" * 64) is not None
    if settings.blob_offload in ("x-accel", "x-sendfile") and not local:
        raise InputError(
            f"LORAREG_BLOB_OFFLOAD={settings.blob_offload} needs the filesystem blob store; "
            "with S3 storage use s3-redirect"
        )
    if settings.blob_offload == "s3-redirect" and local:
        raise InputError("LORAREG_BLOB_OFFLOAD=s3-redirect needs S3 storage (LORAREG_STORAGE=s3://…)")


def open_registry_for(settings: Settings) -> Registry:
    """Open the registry service the settings describe (embedded SQLite + blob dir by default)."""
    from lorareg.registry import open_registry

    return open_registry(
        settings.home,
        database_url=settings.database_url,
        storage=settings.storage,
        s3_endpoint=settings.s3_endpoint,
        key_file=settings.registry_key_file,
        key_password=settings.registry_key_password.encode() if settings.registry_key_password else None,
        near_duplicate_threshold=settings.near_duplicate_threshold,
        key_uri=settings.registry_key,
        key_pin=settings.registry_key_pin,
    )


class AccessLogMiddleware:
    """Pure ASGI middleware (keeps streaming intact) that logs one line per HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = {"status": 0, "in": 0, "out": 0}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
            elif message["type"] == "http.response.body":
                state["out"] += len(message.get("body", b""))
            elif message["type"] == "http.response.pathsend":  # the server sends the whole file
                state["out"] += os.stat(message["path"]).st_size
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        except Exception:
            state["status"] = state["status"] or 500  # a crash: the error middleware outside answers 500
            raise
        finally:
            access_log.info(
                "%s %s %d %.1fms in=%d out=%d",
                log_safe(scope["method"]),
                log_safe(scope["path"]),
                state["status"],
                (time.perf_counter() - started) * 1000,
                state["in"],
                state["out"],
            )
