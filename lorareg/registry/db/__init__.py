"""The registry's database: tables (``tables``, ``takedown_tables``), engine and sessions (``engine``), and
schema versions (``migrate``, the Alembic migrations in ``migrations/``); ``fingerprint_tables`` holds the
weight fingerprints; ``device_tables`` the device grants of ``lorareg login``.

Only ``lorareg.registry`` imports this package (a layering test enforces it): routes, pages and the CLI go
through the registry service, never through tables. Importing the package registers every table on
``SQLModel.metadata``, so Alembic and ``open_database`` see the whole schema.
"""

from __future__ import annotations

from lorareg.registry.db.alias_tables import Alias, NamespaceMember, OidcLogin
from lorareg.registry.db.device_tables import DeviceGrant
from lorareg.registry.db.engine import SQLITE_BUSY_TIMEOUT_MS, Database, open_database
from lorareg.registry.db.fingerprint_tables import FingerprintBand, FingerprintRow, SimilarityFlag
from lorareg.registry.db.tables import (
    FTS_TABLE,
    FTS_TERMS_TABLE,
    POSTGRES_FTS_DDL,
    SQLITE_FTS_DDL,
    Adapter,
    Blob,
    Namespace,
    PublisherKey,
    RegistryKeySet,
    Revocation,
    RevocationListState,
    TlogLeaf,
    Token,
    User,
    UTCDateTime,
    Version,
    VersionCreator,
    dt_column,
    utcnow,
)
from lorareg.registry.db.takedown_tables import (
    Derivation,
    Preview,
    RateLimitHit,
    TakedownEvent,
    TakedownRequest,
    WebSession,
)
from lorareg.registry.db.webhook_tables import Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "FTS_TABLE",
    "FTS_TERMS_TABLE",
    "POSTGRES_FTS_DDL",
    "SQLITE_BUSY_TIMEOUT_MS",
    "SQLITE_FTS_DDL",
    "Adapter",
    "Alias",
    "Blob",
    "Database",
    "Derivation",
    "DeviceGrant",
    "FingerprintBand",
    "FingerprintRow",
    "Namespace",
    "NamespaceMember",
    "OidcLogin",
    "Preview",
    "PublisherKey",
    "RateLimitHit",
    "RegistryKeySet",
    "Revocation",
    "SimilarityFlag",
    "RevocationListState",
    "TakedownEvent",
    "TakedownRequest",
    "TlogLeaf",
    "Token",
    "UTCDateTime",
    "User",
    "Version",
    "VersionCreator",
    "WebSession",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "dt_column",
    "open_database",
    "utcnow",
]
