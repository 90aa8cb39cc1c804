"""Resolving references and searching the catalogue through the service."""

from __future__ import annotations

import pytest

from lorareg.errors import ConflictError, ForbiddenError, InputError, NotFoundError
from lorareg.registry.auth import Principal
from lorareg.registry.records import SearchQuery
from lorareg.registry.service import Registry
from tests.fixtures.registry import Publisher, make_publisher


@pytest.mark.parametrize("kind", ["sha256", "autov1", "autov2", "autov3", "crc32", "blake3", "autov3-prefix"])
def test_resolve_by_every_hash_kind(registry: Registry, publisher: Publisher, kind: str) -> None:
    record = publisher.publish(kind="sd1-kohya", rank=2, blocks=None)  # 2.4 MB: over 2 MiB, so AutoV1 exists
    hashes = record.blob.hashes()
    ref = hashes["autov3"][:12] if kind == "autov3-prefix" else hashes[kind]
    assert ref is not None
    assert registry.resolve(ref.upper() if kind == "crc32" else ref).sha256 == record.sha256


def test_resolve_name_picks_the_highest_active_release(registry: Registry, publisher: Publisher) -> None:
    # 2.0.0-rc.1 has higher precedence, but like pip and npm a bare name prefers a release to a pre-release
    for version in ["1.9.0", "1.10.0", "2.0.0-rc.1", "1.2.3"]:
        publisher.publish(version=version)
    assert registry.resolve("acme/pixel-art").version == "1.10.0"
    registry.yank("acme/pixel-art", "1.10.0", principal=publisher.principal)
    assert registry.resolve("acme/pixel-art").version == "1.9.0"
    assert registry.resolve("acme/pixel-art@1.10.0").status == "yanked"  # exact version still loads
    registry.unyank("acme/pixel-art", "1.10.0", principal=publisher.principal)
    assert registry.resolve("acme/pixel-art").version == "1.10.0"
    versions = [v.version for v in registry.get_adapter("acme/pixel-art").versions]
    assert versions == ["2.0.0-rc.1", "1.10.0", "1.9.0", "1.2.3"]


def test_resolve_name_with_only_prereleases_returns_the_highest_prerelease(
    registry: Registry, publisher: Publisher
) -> None:
    publisher.publish(version="1.0.0-alpha")
    publisher.publish(version="1.0.0-beta.2")
    assert registry.resolve("acme/pixel-art").version == "1.0.0-beta.2"


def test_yanked_only_adapter_does_not_resolve_by_name(registry: Registry, publisher: Publisher) -> None:
    publisher.publish(version="1.0.0")
    registry.yank("acme/pixel-art", "1.0.0", principal=publisher.principal)
    with pytest.raises(NotFoundError, match="no active version"):
        registry.resolve("acme/pixel-art")


@pytest.mark.parametrize(
    "ref",
    ["acme/nope", "acme/pixel-art@9.9.9", "0" * 64, "0" * 10, "0" * 8, "0" * 12],
    ids=["name", "version", "sha256", "autov2", "crc32", "prefix"],
)
def test_unknown_references_are_not_found(registry: Registry, publisher: Publisher, ref: str) -> None:
    publisher.publish()
    with pytest.raises(NotFoundError):
        registry.resolve(ref)


@pytest.mark.parametrize(
    "ref",
    ["", "abc", "zz" * 32, "0" * 11, "Acme/Pixel", "acme/../x", "' OR 1=1 --"],
    ids=["empty", "short-hex", "not-hex", "odd-length", "upper-case-name", "traversal", "sql"],
)
def test_malformed_references_are_input_errors(registry: Registry, ref: str) -> None:
    with pytest.raises(InputError):
        registry.resolve(ref)


def test_yank_needs_the_namespace(registry: Registry, publisher: Publisher) -> None:
    publisher.publish()
    other = make_publisher(registry, "globex")
    with pytest.raises(ForbiddenError):
        registry.yank("acme/pixel-art", "1.0.0", principal=other.principal)


def test_revoked_version_cannot_be_unyanked(
    registry: Registry, publisher: Publisher, reviewer: Principal
) -> None:
    record = publisher.publish()
    registry.revoke(record.sha256, reason="upheld takedown", principal=reviewer)
    with pytest.raises(ConflictError):
        registry.unyank("acme/pixel-art", "1.0.0", principal=publisher.principal)
    assert registry.get_version("acme/pixel-art", "1.0.0").status == "revoked"


@pytest.fixture
def catalogue(registry: Registry, publisher: Publisher) -> Registry:
    publisher.publish("pixel-art", "1.0.0", description="Crisp 16-colour sprites", trigger_words=["pxart"])
    publisher.publish(
        "ink-wash",
        "1.0.0",
        description="Sumi-e brush strokes",
        tags=["ink", "brush"],
        license={"id": "MIT", "commercial_use": False, "derivatives": True, "attribution_required": False},
        creators=[{"name": "Jo Park", "role": "trainer"}],
    )
    publisher.publish(
        "face-of-jo",
        "1.0.0",
        description="A portrait likeness",
        consent={"subject": "likeness", "status": "obtained"},
        kind="sdxl-kohya",
    )
    return registry


def _names(registry: Registry, **query: object) -> list[str]:
    return sorted(v.name for v in registry.search(SearchQuery(**query)).items)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"text": "sprites"}, ["acme/pixel-art"]),
        ({"text": "brush"}, ["acme/ink-wash"]),
        ({"text": "pxart"}, ["acme/pixel-art"]),
        ({"text": "jo"}, ["acme/face-of-jo", "acme/ink-wash"]),
        ({"text": "ink"}, ["acme/ink-wash"]),
        ({"text": "sumi brush"}, ["acme/ink-wash"]),
        ({"text": "sumi pixel"}, []),
        ({"text": 'pixel" OR NOT x*'}, []),
        ({"family": "sdxl"}, ["acme/face-of-jo"]),
        ({"license": "MIT"}, ["acme/ink-wash"]),
        ({"commercial_use": False}, ["acme/ink-wash"]),
        ({"consent_subject": "likeness"}, ["acme/face-of-jo"]),
        ({"consent_status": "obtained"}, ["acme/face-of-jo"]),
        ({"creator": "jo park"}, ["acme/ink-wash"]),
        ({"creator": "Acme Studio", "family": "sd1"}, ["acme/pixel-art"]),
    ],
    ids=lambda v: str(v),
)
def test_search_full_text_and_each_filter(
    catalogue: Registry, query: dict[str, object], expected: list[str]
) -> None:
    assert _names(catalogue, **query) == expected


def test_search_hides_yanked_and_revoked(
    catalogue: Registry, publisher: Publisher, reviewer: Principal
) -> None:
    catalogue.yank("acme/pixel-art", "1.0.0", principal=publisher.principal)
    catalogue.revoke("acme/ink-wash@1.0.0", reason="licence violation", principal=reviewer)
    assert _names(catalogue) == ["acme/face-of-jo"]


@pytest.mark.parametrize("sort", ["newest", "name"])
def test_keyset_pagination_is_stable_under_inserts(
    registry: Registry, publisher: Publisher, sort: str
) -> None:
    for i in range(7):
        publisher.publish(f"a{i}", "1.0.0")
    seen: list[str] = []
    page = registry.search(SearchQuery(sort=sort, limit=3))  # type: ignore[arg-type]
    seen += [v.ref for v in page.items]
    publisher.publish("a00-inserted", "1.0.0")  # sorts before the cursor in both orders
    while page.next_cursor:
        page = registry.search(SearchQuery(sort=sort, limit=3, cursor=page.next_cursor))  # type: ignore[arg-type]
        seen += [v.ref for v in page.items]
    assert sorted(seen) == sorted(f"acme/a{i}@1.0.0" for i in range(7))
    assert len(seen) == len(set(seen))


def test_name_sort_orders_by_name_then_highest_version(registry: Registry, publisher: Publisher) -> None:
    publisher.publish("b", "1.9.0")
    publisher.publish("b", "1.10.0")
    publisher.publish("a", "1.0.0")
    refs = [v.ref for v in registry.search(SearchQuery(sort="name")).items]
    assert refs == ["acme/a@1.0.0", "acme/b@1.10.0", "acme/b@1.9.0"]


@pytest.mark.parametrize(
    ("cursor", "sort"),
    [("garbage!", "newest"), ("W10", "newest"), ("WyJuYW1lIiwiYSIsImIiLDFd", "newest"), ("x" * 5000, "name")],
    ids=["not-base64", "empty-list", "other-sort", "huge"],
)
def test_forged_cursors_are_input_errors(registry: Registry, cursor: str, sort: str) -> None:
    with pytest.raises(InputError, match="cursor"):
        registry.search(SearchQuery(sort=sort, cursor=cursor))  # type: ignore[arg-type]
