"""The application factory: ``create_app(settings)`` wires settings, the registry service and the routes.

Nothing is built at import time, so tests and replicas make as many independent apps as they like. The
routers of ``lorareg/server/takedown_api.py`` and ``lorareg/server/web.py`` (each module's ``router``) are
included when those modules exist, so those features plug in without touching this file. Every request
gets one access-log line (logger ``lorareg.access``): method, path without the query string (a query might
carry a secret), status, duration and bytes in/out. This module holds no route logic.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lorareg import __version__
from lorareg.registry.service import Registry
from lorareg.server import api
from lorareg.server.config import Settings
from lorareg.server.errors import install_error_handlers

access_log = logging.getLogger("lorareg.access")

# Routers of features built beside the core API (takedowns and previews, the web UI): each module's
# ``router`` is included when the module exists, so those features plug in without editing this file.
_OPTIONAL_ROUTERS = ("lorareg.server.takedown_api", "lorareg.server.web", "lorareg.server.similar_api")


def create_app(settings: Settings, *, registry: Registry | None = None) -> FastAPI:
    """Build the ASGI app for ``settings``; ``registry`` overrides the one opened from the settings."""
    app = FastAPI(
        title="lorareg",
        version=__version__,
        summary="Registry and provenance for LoRA adapters: signed manifests, verified pulls.",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.registry = registry if registry is not None else open_registry_for(settings)
    install_error_handlers(app)
    app.include_router(api.router)
    for module in _OPTIONAL_ROUTERS:
        _include_optional(app, module)
    app.add_middleware(AccessLogMiddleware)
    return app


def open_registry_for(settings: Settings) -> Registry:
    """Open the registry service the settings describe (embedded SQLite + blob dir by default)."""
    from lorareg.registry.service import open_registry

    return open_registry(
        settings.home,
        database_url=settings.database_url,
        storage=settings.storage,
        s3_endpoint=settings.s3_endpoint,
        key_file=settings.registry_key_file,
        key_password=settings.registry_key_password.encode() if settings.registry_key_password else None,
        near_duplicate_threshold=settings.near_duplicate_threshold,
    )


def _include_optional(app: FastAPI, module_name: str) -> None:
    """Include ``module_name.router`` when that module is present (an absent feature is no error)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        return
    app.include_router(module.router)
    for middleware in getattr(module, "MIDDLEWARE", ()):  # e.g. the web UI's security headers (CSP)
        app.add_middleware(middleware)


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
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            access_log.info(
                "%s %s %d %.1fms in=%d out=%d",
                scope["method"],
                scope["path"],
                state["status"],
                (time.perf_counter() - started) * 1000,
                state["in"],
                state["out"],
            )
