"""What the web pages show, computed in Python so that templates only loop and branch.

Each function takes the service (or a record from it) and returns plain data: the catalogue's cards and
filters, an adapter page's reading of its manifest, the signature status (verified on the server just now,
against the registry's key and the keys registered for the namespace), the attribution card and the
lineage links. Every string stays raw here: escaping is jinja2's job (autoescape on), never done by hand.

Deliberately not here: routes, cookies, HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from lorareg.adapter.safetensors import MAX_HEADER_BYTES, parse_header
from lorareg.errors import LoraregError
from lorareg.registry import (
    PreviewRecord,
    Previews,
    Registry,
    SearchQuery,
    VersionRecord,
    VersionSummary,
    read_stored_facts,
)
from lorareg.server.web.alias_views import alias_links
from lorareg.signing.keys import load_public_key
from lorareg.signing.verify import verify_bundle

FAMILY_LABELS = {
    "sd1": "SD 1.x",
    "sd2": "SD 2.x",
    "sdxl": "SDXL",
    "sd3": "SD3",
    "flux1": "FLUX.1",
    "flux2": "FLUX.2",
    "kandinsky": "Kandinsky",
    "wuerstchen": "Würstchen",
    "unknown": "unknown",
}
CONSENT_SUBJECTS = ("style", "likeness", "character", "product", "concept")
CONSENT_STATUSES = ("obtained", "not-required", "public-domain", "unknown")
UNCLEARED_CONSENT = ("unknown", "pending")  # rights not cleared: no green "commercial ok" on the card
HASH_LABELS = {
    "sha256": "SHA-256",
    "autov2": "AutoV2",
    "autov3": "AutoV3",
    "blake3": "BLAKE3",
    "autov1": "AutoV1",
    "crc32": "CRC32",
}
FILTER_NAMES = (
    "q",
    "family",
    "license",
    "commercial_use",
    "consent_subject",
    "consent_status",
    "creator",
    "unreviewed",
    "namespace",
)
MAX_DERIVED_LINKS = 50  # "derived by" links shown on one adapter page
MAX_METADATA_ROWS = 40  # the file's own metadata strings shown on one adapter page
MAX_METADATA_CHARS = 300  # each value shortened to this many characters
_LENGTH_BYTES = 8  # safetensors: little-endian u64 header length first


@dataclass(frozen=True, slots=True)
class SignatureStatus:
    """The outcome of re-verifying a version's bundle on the server, for the adapter page."""

    verified: bool
    publisher_keys: list[str] = field(default_factory=list)
    registry_keys: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def search_query(params: Mapping[str, str]) -> SearchQuery:
    """The service query for the catalogue's URL parameters (blank fields mean "any")."""

    def pick(key: str) -> str | None:
        value = params.get(key, "").strip()
        return value or None

    commercial = pick("commercial_use")
    unreviewed = pick("unreviewed")
    return SearchQuery(
        text=pick("q"),
        family=pick("family"),
        license=pick("license"),
        commercial_use=None if commercial is None else commercial == "true",
        consent_subject=pick("consent_subject"),
        consent_status=pick("consent_status"),
        creator=pick("creator"),
        unreviewed=None if unreviewed is None else unreviewed == "true",
        namespace=pick("namespace"),
        sort="name" if params.get("sort") == "name" else "newest",
        cursor=pick("cursor"),
    )


def catalogue_view(registry: Registry, params: Mapping[str, str]) -> dict[str, Any]:
    """Cards, filters, the next-page link and the JSON twin's URL for the catalogue page.

    One card per adapter (the first, i.e. newest, matching version of each, with its version count). A
    filter value outside its vocabulary is the same typo the API answers 400 for: it is shown as an error
    (``error``) with no results, never silently dropped.
    """
    kept = {k: params[k] for k in (*FILTER_NAMES, "sort") if params.get(k)}
    error = filter_error(params)
    query = search_query(params)
    page = registry.search(query) if error is None else None
    items = _first_per_adapter(page.items) if page else []
    page_cursor = page.next_cursor if page else None
    previews = Previews(registry).first_of([(v.name, v.version) for v in items])
    counts = registry.version_counts([v.name for v in items])
    next_url = "/?" + urlencode({**kept, "cursor": page_cursor}) if page_cursor else None
    return {
        "cards": [_card(item, previews.get((item.name, item.version)), counts) for item in items],
        "count": len(items),
        "more": next_url is not None,
        "error": error,
        "filters": {k: params.get(k, "") for k in (*FILTER_NAMES, "sort")},
        "families": list(FAMILY_LABELS.items()),
        "consent_subjects": CONSENT_SUBJECTS,
        "consent_statuses": CONSENT_STATUSES,
        "next_url": next_url,
        "first_url": "/?" + urlencode(kept) if query.cursor else None,
        "json_url": "/api/v1/adapters" + ("?" + urlencode(kept) if kept else ""),
        "filtered": bool(kept),
    }


def filter_error(params: Mapping[str, str]) -> str | None:
    """The first catalogue filter whose value is not one of its choices (as the API's 400 says it)."""
    choices = {
        "family": tuple(FAMILY_LABELS),
        "consent_subject": CONSENT_SUBJECTS,
        "consent_status": CONSENT_STATUSES,
        "commercial_use": ("true", "false"),
        "sort": ("newest", "name"),
    }
    for name, allowed in choices.items():
        value = params.get(name, "").strip()
        if value and value not in allowed:
            return f"{name} {value[:80]!r} is not one of: {', '.join(allowed)}"
    return None


def adapter_view(registry: Registry, record: VersionRecord, *, registry_url: str) -> dict[str, Any]:
    """Everything the adapter page shows about one version (``registry_url``: this server's own URL)."""
    m = record.manifest
    adapter = registry.get_adapter(record.name)
    return {
        "record": record,
        "versions": [_version_link(v, current=record.version) for v in adapter.versions],
        "aliases": alias_links(registry, record.name, current=record.version),
        "facts": manifest_facts(m, size=record.blob.size),
        "signature": signature_status(registry, record),
        "hashes": [(HASH_LABELS[k], v) for k in HASH_LABELS if (v := record.blob.hashes().get(k))],
        "trigger_words": list(m.get("trigger_words") or []),
        "creators": [(str(c.get("name", "")), str(c.get("role", ""))) for c in m.get("creators") or []],
        "licence": licence_words(m),
        "credit_line": credit_line(m),
        "dataset": _dataset(m),
        "consent": _consent(m),
        "derived_from": _parents(m),
        "derived_by": derived_by(registry, record.name, record.version),
        "similar": similar_adapters(registry, record.name, record.version),
        "file_metadata": file_metadata(registry, record),
        # a revoked version's previews are withdrawn with it (served 451): none shown, no broken images
        "previews": []
        if record.status == "revoked"
        else Previews(registry).for_version(record.name, record.version),
        "pull_command": f"lorareg pull {record.name}@{record.version} --verify",
        "python_lines": _python_lines(record, registry_url),
        "revoked_on": record.revoked_at.strftime("%Y-%m-%d %H:%M UTC") if record.revoked_at else None,
        "json_url": f"/api/v1/adapters/{record.name}/versions/{quote(record.version)}",
        "signature_url": f"/api/v1/adapters/{record.name}/versions/{quote(record.version)}/signature",
    }


def similar_adapters(registry: Registry, name: str, version: str) -> dict[str, Any]:
    """The "Similar adapters" panel: weight-fingerprint matches, linked (``docs/fingerprints.md``)."""
    from lorareg.registry import fingerprints

    fingerprinted, matches = fingerprints.similar_to_version(registry.db, name, version)
    items = [m.to_json() | {"url": adapter_url(m.name, m.version)} for m in matches]
    return {"fingerprinted": fingerprinted, "matches": items}


def possible_reuploads(registry: Registry, name: str, version: str) -> list[dict[str, Any]]:
    """For a review page: revoked adapters this version looks like, and other namespaces' flagged ones."""
    from lorareg.registry import fingerprints

    found = fingerprints.possible_reuploads(
        registry.db, name, version, threshold=registry.near_duplicate_threshold
    )
    return [m.to_json() | {"url": adapter_url(m.name, m.version)} for m in found]


def signature_status(registry: Registry, record: VersionRecord) -> SignatureStatus:
    """Re-verify the stored bundle against the stored blob's hashes and facts, here and now.

    Trusted: the registry's own key (a countersignature is required) and the publisher keys registered for
    the adapter's namespace, exactly what a publish accepted. A failure is shown, never hidden.
    """
    from lorareg.signing.trust import TrustStore

    namespace = record.name.split("/", 1)[0]
    store = TrustStore.empty()
    for key in registry.publisher_keys(namespace):
        public = load_public_key(key.public_pem.encode())
        store = store.with_key(public, label=f"publisher {namespace}", role="publisher", namespace=namespace)
    store = store.with_key(registry.key.public_key, label="this registry", role="registry", namespace=None)
    try:
        verified = verify_bundle(
            record.bundle,
            file_size=record.blob.size,
            file_digests=record.blob.hashes(),
            file_facts=read_stored_facts(registry.store, record.blob),
            trust=store,
            policy=_CountersignedPolicy(),
        )
    except LoraregError as e:
        return SignatureStatus(False, reasons=list(getattr(e, "reasons", [str(e)])))
    return SignatureStatus(
        True,
        publisher_keys=[s.keyid for s in verified.signers if s.role == "publisher"],
        registry_keys=[s.keyid for s in verified.signers if s.role == "registry"],
    )


def manifest_facts(m: Mapping[str, Any], *, size: int) -> list[tuple[str, str | tuple[str, ...]]]:
    """The manifest read aloud: base model, adapter structure, size, dates."""
    base, adapter = m.get("base_model") or {}, m.get("adapter") or {}
    targets = adapter.get("targets") or []
    rows: list[tuple[str, str | tuple[str, ...]]] = [
        (
            "Base model",
            f"{FAMILY_LABELS.get(base.get('family', ''), base.get('family', '?'))}"
            + (f" ({base['id']})" if base.get("id") else ""),
        ),
        ("Adapter", f"{adapter.get('type', '?')} in {adapter.get('format', '?')} format"),
        ("Rank / alpha", f"{adapter.get('rank', '—')} / {adapter.get('alpha', '—')}"),
        ("Targets", _breakable(f"{len(targets)} modules" + (f", e.g. {targets[0]}" if targets else ""))),
        ("File size", _size(size)),
        ("Created", str(m.get("created") or "not stated")),
    ]
    return [(label, value) for label, value in rows if value]


def licence_words(m: Mapping[str, Any]) -> dict[str, Any]:
    """The licence in plain words: its id and link, and three yes/no/unknown answers."""
    lic = m.get("license") or {}

    def answer(value: object, yes: str, no: str, what: str) -> tuple[str, str]:
        if value is True:
            return "yes", yes
        if value is False:
            return "no", no
        return "unknown", f"{what}: not stated"

    return {
        "id": str(lic.get("id") or "no licence given"),
        "url": lic.get("url") if str(lic.get("url") or "").startswith(("https://", "http://")) else None,
        "answers": [
            answer(
                lic.get("commercial_use"), "Commercial use allowed", "No commercial use", "Commercial use"
            ),
            answer(lic.get("derivatives"), "Derivatives allowed", "No derivatives", "Derivatives"),
            _credit_answer(lic.get("attribution_required")),
        ],
    }


def _credit_answer(value: object) -> tuple[str, str]:
    """ "No credit required" is a freedom, not a restriction: shown neutral, never in the warning red."""
    if value is True:
        return "note", "Credit required"
    if value is False:
        return "free", "No credit required"
    return "unknown", "Credit: not stated"


def credit_line(m: Mapping[str, Any]) -> str:
    """A ready-to-paste credit: adapter, version, creators with roles, licence."""
    creators = [
        f"{c.get('name')} ({c.get('role')})" if c.get("role") else str(c.get("name"))
        for c in m.get("creators") or []
        if c.get("name")
    ]
    lic = (m.get("license") or {}).get("id")
    line = f'LoRA "{m.get("name")}" {m.get("version")}'
    line += f" by {', '.join(creators)}" if creators else ""
    return line + (f", licensed {lic}" if lic else "")


def derived_by(registry: Registry, name: str, version: str) -> list[tuple[str, str]]:
    """``(name, version)`` of versions that declare they derive from exactly ``name@version``."""
    return registry.derived_by(name, version, limit=MAX_DERIVED_LINKS)


def file_metadata(registry: Registry, record: VersionRecord) -> list[tuple[str, str]]:
    """The file's own ``__metadata__`` strings (untrusted, written by the trainer), read by range."""
    store, sha256 = registry.store, record.sha256
    try:
        prefix = b"".join(store.open_range(sha256, 0, _LENGTH_BYTES))
        length = min(int.from_bytes(prefix, "little"), MAX_HEADER_BYTES)
        head = prefix + b"".join(store.open_range(sha256, _LENGTH_BYTES, _LENGTH_BYTES + length))
        metadata = parse_header(head, file_size=record.blob.size).metadata
    except LoraregError:
        return []
    rows = sorted((str(k), _shorten(_visible(str(v)), MAX_METADATA_CHARS)) for k, v in metadata.items())
    return rows[:MAX_METADATA_ROWS]


class _CountersignedPolicy:
    """Integrity and provenance only, with the registry's countersignature required (studio policy is the
    consumer's business, applied when they pull)."""

    require_registry_signature = True
    require_lorareg_manifest = True

    def check(self, manifest: object) -> list[str]:
        return []


def _first_per_adapter(items: tuple[VersionSummary, ...]) -> list[VersionSummary]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.name not in seen:
            seen.add(item.name)
            out.append(item)
    return out


def _rights_badge(item: VersionSummary) -> tuple[str, str] | None:
    """``(css class, words)``: "commercial ok" only when the licence allows it and consent is cleared."""
    if item.consent_status in UNCLEARED_CONSENT or item.consent_status is None:
        return "warn", f"rights unclear (consent {item.consent_status or 'not stated'})"
    if item.commercial_use is True:
        return "ok", "commercial ok"
    if item.commercial_use is False:
        return "neutral", "non-commercial"
    return None


def _card(item: VersionSummary, preview: PreviewRecord | None, counts: Mapping[str, int]) -> dict[str, Any]:
    return {
        "name": item.name,
        "version": item.version,
        "version_count": counts.get(item.name, 1),
        "url": adapter_url(item.name, item.version),
        "family": FAMILY_LABELS.get(item.family, item.family),
        "license": item.license_id or "no licence",
        "rights": _rights_badge(item),
        "consent": f"{item.consent_subject or 'subject not stated'} · {item.consent_status or 'not stated'}",
        "trigger_words": list(item.trigger_words[:6]),
        "description": _shorten(item.description, 160),
        "creators": ", ".join(item.creators[:3]),
        "thumb_url": preview.thumb_url if preview else None,
        "unreviewed": item.unreviewed,
    }


def adapter_url(name: str, version: str | None = None) -> str:
    """The adapter page's path (``/adapters/ns/name`` or ``…/name/VERSION``)."""
    return f"/adapters/{name}" + (f"/{quote(version, safe='')}" if version else "")


def _version_link(v: VersionSummary, *, current: str) -> dict[str, Any]:
    return {
        "version": v.version,
        "url": adapter_url(v.name, v.version),
        "status": v.status,
        "current": v.version == current,
        "published": v.published_at.strftime("%Y-%m-%d"),
    }


def _dataset(m: Mapping[str, Any]) -> list[tuple[str, str]]:
    d = m.get("dataset") or {}
    rows = [("Dataset hash", d.get("sha256")), ("Images", d.get("images")), ("Source", d.get("source"))]
    return [(label, str(value)) for label, value in rows if value not in (None, "")]


def _consent(m: Mapping[str, Any]) -> list[tuple[str, str]]:
    c = m.get("consent") or {}
    rows = [
        ("Subject", c.get("subject")),
        ("Status", c.get("status")),
        ("Evidence", c.get("evidence_sha256")),
    ]
    return [(label, str(value)) for label, value in rows if value not in (None, "")]


def _parents(m: Mapping[str, Any]) -> list[dict[str, str]]:
    """Lineage rows: a link for a parent in this registry, the other registry's name for an external one."""
    out = []
    for p in m.get("derived_from") or []:
        name, version = str(p.get("name", "")), str(p.get("version") or "")
        external = str(p.get("registry") or "")
        url = adapter_url(name, version or None) if name.count("/") == 1 and not external else ""
        out.append({"label": f"{name}@{version}" if version else name, "url": url, "external": external})
    return out


def _python_lines(record: VersionRecord, registry_url: str) -> str:
    ref = f"{record.name}@{record.version}"
    return (
        "from lorareg import load_verified_lora\n"
        f'load_verified_lora(pipe, "{ref}", weight=0.8, registry="{registry_url}")'
    )


def _breakable(text: str) -> tuple[str, ...]:
    """Text split after each dot: the template puts a line-break opportunity (``<wbr>``) between parts, so a
    module path wraps between its names (``unet.down_blocks.0.``), never inside an identifier."""
    parts = text.split(".")
    return tuple(p + "." for p in parts[:-1]) + (parts[-1],)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Metadata values keep control, C1 and bidi characters (real files hold mojibake such as "donâ\x80\x99t");
# a page shows them as visible escapes so they cannot reorder or hide the text around them.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"
)


def _visible(text: str) -> str:
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
