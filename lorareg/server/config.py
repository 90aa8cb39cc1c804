"""Server settings: one frozen object per process, and the only reader of the environment.

Every other server module receives a :class:`Settings` (``create_app(settings)``); nothing else calls
``os.environ``. The CLI builds settings with :func:`settings_from_env`, letting explicit flags win over the
environment. This module deliberately holds no defaults for secrets: tokens live in the database.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from lorareg.errors import InputError

DEFAULT_HOME = Path("./lorareg-data")
DEFAULT_MAX_UPLOAD_BYTES = 2 * 2**30  # 2 GiB: a large FLUX LoRA is ~1.3 GiB
DEFAULT_MAX_BUNDLE_BYTES = 1 * 2**20  # 1 MiB: a signed bundle is a few KiB
DEFAULT_CHUNK_BYTES = 1 * 2**20  # 1 MiB per read/write when streaming blobs
DEFAULT_GC_GRACE_S = 24 * 3600  # start-up garbage collection spares leftovers younger than a day
DEFAULT_NEAR_DUPLICATE_THRESHOLD = 0.9  # weight similarity at which a copy of a revoked adapter is refused
# Who streams blob bytes: lorareg itself, or the front proxy after lorareg authorised the request.
BLOB_OFFLOAD_MODES = ("none", "x-accel", "x-sendfile", "s3-redirect")
PRESIGNED_URL_TTL_S = 300  # an S3 redirect is good for 5 minutes; a resumed pull asks again
DEFAULT_X_ACCEL_PREFIX = "/_lorareg_blobs/"  # nginx's internal location that aliases DATA/blobs/
DEFAULT_BODY_TIMEOUT_S = 30  # a request body that sends nothing for this long is answered 408
DEFAULT_MAX_CONCURRENT_UPLOADS = 32  # uploads in progress per process (their own worker threads)
DEFAULT_MAX_UPLOADS_PER_TOKEN = 8  # uploads in progress per token
DEFAULT_LOGIN_TOKEN_TTL_S = 12 * 3600  # `lorareg login` tokens last a working day (docs/deployment.md)
DEFAULT_DEVICE_CODE_TTL_S = 600  # RFC 8628 expires_in: the person has 10 minutes to approve
DEFAULT_DEVICE_INTERVAL_S = 5  # RFC 8628 interval: the CLI polls at most every 5 s
READ_MODES = ("public", "signed-in")  # LORAREG_READ: who may read the catalogue (docs/studio.md)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server needs to start, fixed for the life of the process.

    ``database_url`` and ``storage`` are ``None`` for the embedded defaults under ``home``
    (SQLite file and blob directory), which the registry service derives.
    """

    home: Path = DEFAULT_HOME
    database_url: str | None = None
    storage: str | None = None
    s3_endpoint: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_bundle_bytes: int = DEFAULT_MAX_BUNDLE_BYTES
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    public_url: str | None = None  # the URL clients reach; used in blob_url/signature_url when set
    gc_grace_s: int = DEFAULT_GC_GRACE_S  # age (s) of upload leftovers that start-up collection removes
    registry_key_file: Path | None = None  # default: HOME/registry.key; a mounted secret keeps it off disk
    registry_key_password: str | None = field(default=None, repr=False)  # decrypts an encrypted key file
    near_duplicate_threshold: float = DEFAULT_NEAR_DUPLICATE_THRESHOLD  # docs/fingerprints.md
    blob_offload: str = "none"  # one of BLOB_OFFLOAD_MODES (docs/deployment.md)
    x_accel_prefix: str = DEFAULT_X_ACCEL_PREFIX
    trusted_proxies: tuple[str, ...] = ()  # addresses/CIDRs whose X-Forwarded-For/-Proto are believed
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S  # longest wait for the next piece of a request body
    max_concurrent_uploads: int = DEFAULT_MAX_CONCURRENT_UPLOADS  # the next upload gets 429
    max_uploads_per_token: int = DEFAULT_MAX_UPLOADS_PER_TOKEN  # the token's next upload gets 429
    registry_key: str | None = None  # pkcs11:token=…;object=… (RFC 7512): the key lives in an HSM
    registry_key_pin: str | None = field(default=None, repr=False)  # the token's user PIN
    read: str = "public"  # "signed-in": every read needs a session or a token (server/read_access.py)
    webhook_allow: str | None = None  # LORAREG_WEBHOOK_ALLOW: loopback,private,link-local,CIDR… targets
    webhook_poll_s: float = 2.0  # how often the delivery worker looks for due webhook deliveries (0: off)
    webhook_lease_s: float = 60.0  # a claimed delivery is taken over after this long (its worker died)
    webhook_backoff_s: float = 10.0  # first retry delay of a failed delivery; doubles per attempt
    oidc_issuer: str | None = None  # LORAREG_OIDC_ISSUER: single sign-on for the web UI when set
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_roles: str | None = None  # LORAREG_OIDC_ROLES: "group=viewer;team=publisher:ns;ops=admin"
    oidc_groups_claim: str = "groups"  # the ID-token claim that lists the user's groups
    login_token_ttl_s: int = DEFAULT_LOGIN_TOKEN_TTL_S  # LORAREG_LOGIN_TOKEN_TTL: tokens of `lorareg login`
    device_code_ttl_s: int = DEFAULT_DEVICE_CODE_TTL_S  # LORAREG_DEVICE_CODE_TTL_S: a code's expires_in
    device_interval_s: int = DEFAULT_DEVICE_INTERVAL_S  # LORAREG_DEVICE_INTERVAL_S: least seconds per poll

    def with_overrides(self, **changes: object) -> Settings:
        """Return a copy with the given non-``None`` fields replaced (explicit CLI flags win)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``LORAREG_*`` variables (``os.environ`` unless ``env`` is given).

    Raises:
        InputError: a numeric variable is not a positive integer.
    """
    source = os.environ if env is None else env
    return Settings(
        home=Path(source.get("LORAREG_HOME") or DEFAULT_HOME),
        database_url=source.get("LORAREG_DATABASE_URL") or None,
        storage=source.get("LORAREG_STORAGE") or None,
        s3_endpoint=source.get("LORAREG_S3_ENDPOINT") or None,
        max_upload_bytes=_positive_int(source, "LORAREG_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
        max_bundle_bytes=_positive_int(source, "LORAREG_MAX_BUNDLE_BYTES", DEFAULT_MAX_BUNDLE_BYTES),
        public_url=source.get("LORAREG_PUBLIC_URL") or None,
        gc_grace_s=_seconds(source, "LORAREG_GC_GRACE_S", DEFAULT_GC_GRACE_S),
        registry_key_file=Path(source["LORAREG_REGISTRY_KEY_FILE"])
        if source.get("LORAREG_REGISTRY_KEY_FILE")
        else None,
        registry_key_password=source.get("LORAREG_REGISTRY_KEY_PASSWORD") or None,
        near_duplicate_threshold=_fraction(
            source, "LORAREG_NEAR_DUPLICATE_THRESHOLD", DEFAULT_NEAR_DUPLICATE_THRESHOLD
        ),
        blob_offload=_choice(source, "LORAREG_BLOB_OFFLOAD", BLOB_OFFLOAD_MODES),
        x_accel_prefix=_location(source, "LORAREG_X_ACCEL_PREFIX", DEFAULT_X_ACCEL_PREFIX),
        trusted_proxies=_networks(source, "LORAREG_TRUSTED_PROXIES"),
        body_timeout_s=_positive_int(source, "LORAREG_BODY_TIMEOUT_S", DEFAULT_BODY_TIMEOUT_S),
        max_concurrent_uploads=_positive_int(
            source, "LORAREG_MAX_CONCURRENT_UPLOADS", DEFAULT_MAX_CONCURRENT_UPLOADS
        ),
        max_uploads_per_token=_positive_int(
            source, "LORAREG_MAX_UPLOADS_PER_TOKEN", DEFAULT_MAX_UPLOADS_PER_TOKEN
        ),
        registry_key=source.get("LORAREG_REGISTRY_KEY") or None,
        registry_key_pin=source.get("LORAREG_REGISTRY_KEY_PIN") or None,
        read=check_read_mode(source.get("LORAREG_READ") or "public", "LORAREG_READ"),
        webhook_allow=source.get("LORAREG_WEBHOOK_ALLOW") or None,
        webhook_poll_s=_seconds(source, "LORAREG_WEBHOOK_POLL_S", 2),
        webhook_lease_s=_seconds(source, "LORAREG_WEBHOOK_LEASE_S", 60),
        webhook_backoff_s=_seconds(source, "LORAREG_WEBHOOK_BACKOFF_S", 10),
        oidc_issuer=(source.get("LORAREG_OIDC_ISSUER") or "").rstrip("/") or None,
        oidc_client_id=source.get("LORAREG_OIDC_CLIENT_ID") or None,
        oidc_client_secret=source.get("LORAREG_OIDC_CLIENT_SECRET") or None,
        oidc_roles=source.get("LORAREG_OIDC_ROLES") or None,
        oidc_groups_claim=source.get("LORAREG_OIDC_GROUPS_CLAIM") or "groups",
        login_token_ttl_s=_duration_s(source, "LORAREG_LOGIN_TOKEN_TTL", DEFAULT_LOGIN_TOKEN_TTL_S),
        device_code_ttl_s=_positive_int(source, "LORAREG_DEVICE_CODE_TTL_S", DEFAULT_DEVICE_CODE_TTL_S),
        device_interval_s=_seconds(source, "LORAREG_DEVICE_INTERVAL_S", DEFAULT_DEVICE_INTERVAL_S),
    )


def _duration_s(source: Mapping[str, str], name: str, default: int) -> int:
    """A lifetime as ``12h``, ``30m``, ``7d`` or plain seconds (``3600``)."""
    raw = (source.get(name) or "").strip()
    if not raw:
        return default
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    match = re.fullmatch(r"([1-9][0-9]{0,5})([smhd])", raw)
    if match is None:
        raise InputError(f"{name} must be a duration such as 12h, 30m, 7d or seconds; got {raw[:40]!r}")
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _fraction(source: Mapping[str, str], name: str, default: float) -> float:
    raw = source.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise InputError(f"{name} must be a number between 0 and 1; got {raw!r}") from e
    if not 0 < value <= 1:
        raise InputError(f"{name} must be a number in (0, 1]; got {value}")
    return value


def _choice(source: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    raw = source.get(name) or choices[0]
    if raw not in choices:
        raise InputError(f"{name} must be one of {', '.join(choices)}; got {raw[:40]!r}")
    return raw


def _location(source: Mapping[str, str], name: str, default: str) -> str:
    raw = source.get(name) or default
    if not raw.startswith("/") or not raw.endswith("/") or any(c in raw for c in "?#% \t\r\n"):
        raise InputError(f"{name} must be a URL path that starts and ends with '/'; got {raw[:60]!r}")
    return raw


def _networks(source: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or CIDR networks (default: none, so no header is trusted).

    ``*`` is refused: trusting every peer's ``X-Forwarded-For`` lets anyone pick their address (and
    dodge the takedown rate limit); name the proxies instead.
    """
    items = tuple(part.strip() for part in (source.get(name) or "").split(",") if part.strip())
    for item in items:
        try:
            ipaddress.ip_network(item)  # strict, as uvicorn reads it: host bits of a CIDR must be zero
        except ValueError as e:
            raise InputError(f"{name} takes IP addresses or CIDR networks (a,b,…); got {item[:80]!r}") from e
    return items


def check_read_mode(value: str, where: str) -> str:
    """``public`` or ``signed-in``; any other value is a typo that must not silently expose the catalogue."""
    if value not in READ_MODES:
        raise InputError(f"{where} must be one of {', '.join(READ_MODES)}; got {value[:40]!r}")
    return value


def _seconds(source: Mapping[str, str], name: str, default: int) -> int:
    raw = source.get(name)
    if not raw:
        return default
    if not raw.isdigit():
        raise InputError(f"{name} must be a whole number of seconds (0 or more); got {raw!r}")
    return int(raw)


def _positive_int(source: Mapping[str, str], name: str, default: int) -> int:
    raw = source.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as e:
        raise InputError(f"{name} must be a positive integer; got {raw!r}") from e
    if value <= 0:
        raise InputError(f"{name} must be a positive integer; got {value}")
    return value
