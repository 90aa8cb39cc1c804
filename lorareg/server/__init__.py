"""The registry's HTTP server: ``create_app(settings)`` and its settings.

Routes are thin wrappers over :class:`lorareg.registry.service.Registry`; see ``docs/api.md``.
"""

from __future__ import annotations

from lorareg.server.app import create_app
from lorareg.server.config import Settings, settings_from_env

__all__ = ["Settings", "create_app", "settings_from_env"]
