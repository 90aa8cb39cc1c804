"""The webhook delivery worker: a thread per server process that sends due deliveries.

Every replica runs one; they share the queue in the database and claim rows from it
(``lorareg.registry.webhook_delivery``), so adding replicas adds senders, never duplicate sends. The thread
starts with the app and stops with it; ``LORAREG_WEBHOOK_POLL_S=0`` turns it off (a deployment that runs
delivery elsewhere). A failure inside one round is logged and the next round runs: a broken receiver or a
database hiccup must not kill delivery for everyone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid

from fastapi import FastAPI

from lorareg.registry import Registry, WebhookAllow, Webhooks
from lorareg.server.config import Settings

_log = logging.getLogger("lorareg.server")
BATCH = 20  # deliveries claimed per round


def install(app: FastAPI) -> None:
    """Start the worker when the app starts and stop it when the app stops."""
    settings: Settings = app.state.settings
    if settings.webhook_poll_s <= 0:
        return
    stop = threading.Event()
    worker = f"{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    thread = threading.Thread(
        target=_run, args=(app.state.registry, settings, worker, stop), name="lorareg-webhooks", daemon=True
    )

    def shutdown() -> None:
        stop.set()
        if thread.is_alive():
            thread.join(timeout=10)

    app.router.add_event_handler("startup", thread.start)
    app.router.add_event_handler("shutdown", shutdown)


def webhooks_for(registry: Registry, settings: Settings) -> Webhooks:
    """The webhook service with this server's target allow-list (``LORAREG_WEBHOOK_ALLOW``)."""
    return Webhooks(registry, allow=WebhookAllow.parse(settings.webhook_allow))


def _run(registry: Registry, settings: Settings, worker: str, stop: threading.Event) -> None:
    hooks = webhooks_for(registry, settings)
    while not stop.wait(settings.webhook_poll_s):
        try:
            while (
                hooks.deliver_due(
                    worker=worker,
                    limit=BATCH,
                    lease_s=settings.webhook_lease_s,
                    backoff_s=settings.webhook_backoff_s,
                )
                == BATCH
                and not stop.is_set()
            ):
                pass  # a full batch: more may be due right away
        except Exception:  # noqa: BLE001 - logged; the next round retries
            _log.exception("webhook delivery round failed")
