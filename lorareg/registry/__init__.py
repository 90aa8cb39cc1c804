"""The registry service: publishing, catalogue and search, yanks and takedowns, previews, accounts and tokens,
the transparency log's storage, and the blob stores and database beneath them.

This module is the face other packages use (``server``, ``cli``, ``demo``): the service object, the records
it returns, and the few constants routes need. The tables in ``registry.db`` are private to this package — a
layering test refuses any import of them from outside — so every query lives beside the service.
"""

from __future__ import annotations

from lorareg.registry import web_sessions
from lorareg.registry.aliases import Aliases, AliasRecord
from lorareg.registry.auth import VIEWER_SCOPE, Principal, parse_duration
from lorareg.registry.device_grants import DeviceGrants, GrantError, GrantView
from lorareg.registry.previews import MAX_UPLOAD_BYTES as MAX_PREVIEW_UPLOAD_BYTES
from lorareg.registry.previews import PreviewRecord, Previews, clean_image
from lorareg.registry.publishing import read_stored_facts
from lorareg.registry.records import (
    DEFAULT_PAGE_LIMIT,
    MAX_PAGE_LIMIT,
    BlobRecord,
    SearchQuery,
    VersionRecord,
    VersionSummary,
)
from lorareg.registry.service import Registry, default_database_url, open_registry
from lorareg.registry.sso import RoleGrant, RoleMap, SsoLogins
from lorareg.registry.takedown import (
    DECISIONS,
    GOOD_FAITH_STATEMENT,
    REASONS,
    STATUSES,
    TAKEDOWN_LIMITS,
    Takedowns,
)
from lorareg.registry.teams import MEMBER_ROLES, MemberRecord, Teams
from lorareg.registry.webhook_urls import WebhookAllow
from lorareg.registry.webhooks import DeliveryRecord, WebhookRecord, Webhooks

__all__ = [
    "DECISIONS",
    "DEFAULT_PAGE_LIMIT",
    "GOOD_FAITH_STATEMENT",
    "MAX_PAGE_LIMIT",
    "MEMBER_ROLES",
    "MAX_PREVIEW_UPLOAD_BYTES",
    "REASONS",
    "STATUSES",
    "TAKEDOWN_LIMITS",
    "VIEWER_SCOPE",
    "AliasRecord",
    "Aliases",
    "BlobRecord",
    "DeliveryRecord",
    "DeviceGrants",
    "GrantError",
    "GrantView",
    "MemberRecord",
    "PreviewRecord",
    "Previews",
    "Principal",
    "Registry",
    "RoleGrant",
    "RoleMap",
    "SearchQuery",
    "SsoLogins",
    "Takedowns",
    "Teams",
    "VersionRecord",
    "VersionSummary",
    "clean_image",
    "WebhookAllow",
    "WebhookRecord",
    "Webhooks",
    "current_schema_revision",
    "default_database_url",
    "open_registry",
    "parse_duration",
    "read_stored_facts",
    "upgrade_schema",
    "web_sessions",
]


def upgrade_schema(url: str) -> str | None:
    """Run the migrations on ``url`` up to this lorareg's schema; returns the revision reached."""
    from lorareg.registry.db import migrate

    return migrate.upgrade(url)


def current_schema_revision(url: str) -> str | None:
    """The schema revision the database at ``url`` is at (None for an empty database)."""
    from lorareg.registry.db import migrate

    return migrate.current_revision(url)
