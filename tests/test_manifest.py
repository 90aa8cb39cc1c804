"""The manifest model: strict parsing with field paths, canonical JSON, round trips, semver, completion."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from lorareg.adapter.facts.model import AdapterFacts
from lorareg.adapter.hashing import FileHashes
from lorareg.errors import InputError, PayloadTooLargeError, UnprocessableError
from lorareg.manifest import (
    Manifest,
    ManifestDraft,
    SemVer,
    canonical_json,
    check_name,
    complete_manifest,
    strict_json_loads,
    version_key,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "manifest.toml"

HASHES = FileHashes(
    sha256="1" * 64, autov1=None, autov2="1" * 10, autov3="3" * 64, crc32="0badf00d", blake3="b" * 64
)
FACTS = AdapterFacts(
    family="sdxl",
    format="kohya",
    type="lora",
    rank=8,
    ranks=(8,),
    alpha=4.0,
    targets=("unet.mid_block.attentions.0.proj_in", "unet.down_blocks.1.attentions.0.proj_out"),
    text_encoder=False,
    components=("unet",),
    tensors=6,
    parameters=1234,
    dtypes=("F16",),
)
SIZE = 123_456


def complete_example(**changes: Any) -> Manifest:
    facts = dataclasses.replace(FACTS, **changes)
    return complete_manifest(
        ManifestDraft.from_toml(EXAMPLE.read_text()), facts=facts, hashes=HASHES, size=SIZE
    )


def complete_dict() -> dict[str, Any]:
    """A complete manifest as JSON-ready data, for hostile mutations."""
    data: dict[str, Any] = json.loads(complete_example().to_canonical_json())
    return data


# ----- the example and the happy paths -----


def test_documented_example_parses_and_completes() -> None:
    manifest = complete_example()
    assert manifest.ref == "me/pixel-art@1.2.0"  # publishable as-is by the tour's namespace
    assert manifest.base_model.id == "stabilityai/stable-diffusion-xl-base-1.0"
    assert manifest.base_model.family == "sdxl"
    assert manifest.license.id == "CreativeML-OpenRAIL-M" and manifest.license.commercial_use is True
    assert manifest.consent.subject == "style"
    assert [c.name for c in manifest.creators] == ["Acme Studio", "Jo Park"]
    assert manifest.derived_from[0].version == "1.1.0"
    assert manifest.derived_from[0].registry == "https://registry.acme.example"  # external lineage
    assert manifest.created == datetime(2025, 3, 14, 9, 30, tzinfo=UTC)
    assert manifest.tags == ("pixel-art", "style", "retro")


def test_round_trip_toml_to_manifest_to_json_to_manifest_is_lossless() -> None:
    manifest = complete_example()
    again = Manifest.from_json_bytes(manifest.to_canonical_json())
    assert again == manifest
    assert again.to_canonical_json() == manifest.to_canonical_json()
    assert Manifest.from_json(manifest.to_json()) == manifest


def test_complete_manifest_written_as_toml_parses_to_the_same_manifest() -> None:
    manifest = complete_example()
    toml = f"size = {SIZE}\n" + EXAMPLE.read_text()
    toml += f'[digests]\nsha256 = "{"1" * 64}"\nautov3 = "{"3" * 64}"\nblake3 = "{"b" * 64}"\n'
    toml = toml.replace("[base_model]\n", '[base_model]\nfamily = "sdxl"\n')
    toml += '[adapter]\nformat = "kohya"\ntype = "lora"\nrank = 8\nalpha = 4\ntargets = [\n'
    toml += "".join(f'  "{t}",\n' for t in sorted(FACTS.targets)) + "]\n"
    assert Manifest.from_toml(toml) == manifest


# ----- canonical JSON -----


def test_canonical_json_golden_bytes() -> None:
    data = {"b": [True, None, 1.5, 8.0], "a": {"z": "é✓", "y": ""}, "A": 2}
    assert canonical_json(data) == '{"A":2,"a":{"y":"","z":"é✓"},"b":[true,null,1.5,8.0]}'.encode()


def test_canonical_manifest_json_has_sorted_keys_no_whitespace_and_raw_utf8() -> None:
    manifest = complete_example()
    manifest = dataclasses.replace(manifest, description="Pixel-Kunst für Spiele — ドット絵")
    data = manifest.to_canonical_json()
    assert "ドット絵".encode() in data and b"\\u" not in data
    parsed = json.loads(data)
    assert data == json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert list(parsed) == sorted(parsed)
    assert not re.search(rb'[ \n]"|":\s|,\s"', data)


def test_equal_manifests_written_differently_have_one_canonical_form() -> None:
    text = EXAMPLE.read_text()
    reordered = text.replace('version = "1.2.0"\n', "", 1).replace('name = "me/pixel-art"\n', "", 1)
    reordered = reordered.replace("created = 2025-03-14T09:30:00Z", 'created = "2025-03-14T09:30:00+00:00"')
    reordered = 'version = "1.2.0"\nname = "me/pixel-art"\n' + reordered
    first = complete_manifest(ManifestDraft.from_toml(text), facts=FACTS, hashes=HASHES, size=SIZE)
    second = complete_manifest(
        ManifestDraft.from_toml(reordered),
        facts=dataclasses.replace(FACTS, alpha=4),
        hashes=HASHES,
        size=SIZE,
    )
    assert first.to_canonical_json() == second.to_canonical_json()


def test_absent_optional_values_are_omitted_and_lists_always_written() -> None:
    data = complete_dict()
    for key in ("description", "dataset", "trigger_words", "tags", "creators", "derived_from"):
        data.pop(key)
    data["adapter"].pop("alpha")
    data["adapter"].pop("rank")
    parsed = json.loads(Manifest.from_json(data).to_canonical_json())
    assert "description" not in parsed and "dataset" not in parsed and "alpha" not in parsed["adapter"]
    assert parsed["tags"] == [] and parsed["creators"] == [] and parsed["trigger_words"] == []


# ----- strict JSON -----


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(b'{"name": "a/b", "name": "c/d"}', "duplicate JSON key", id="duplicate-top-level-key"),
        pytest.param(
            b'{"license": {"id": "MIT", "id": "GPL-3.0"}}', "duplicate JSON key", id="duplicate-nested"
        ),
        pytest.param(b'{"size": NaN}', "NaN", id="nan"),
        pytest.param(b'{"size": -Infinity}', "Infinity", id="infinity"),
        pytest.param(b'{"size": 1e999}', "finite", id="overflow-to-infinity"),
        pytest.param(b"[" * 40 + b"]" * 40, "nesting", id="depth-bomb"),
        pytest.param(b"[" * 200_000, "nesting", id="recursion-bomb"),
        pytest.param(b"\xef\xbb\xbf{}", "byte order mark", id="bom"),
        pytest.param(b'{"name": "\xff"}', "UTF-8", id="invalid-utf8"),
        pytest.param(b'{"size": 1' + b"0" * 5000 + b"}", "invalid JSON", id="huge-integer"),
        pytest.param(b"{'name': 1}", "invalid JSON", id="single-quotes"),
    ],
)
def test_hostile_json_is_refused(payload: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Manifest.from_json_bytes(payload)


def test_oversized_json_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadTooLargeError):
        strict_json_loads(b" " * 1001, max_bytes=1000)


def test_strict_json_loads_keeps_ordinary_json() -> None:
    assert strict_json_loads(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


def test_lone_surrogate_cannot_be_canonicalised() -> None:
    with pytest.raises(InputError, match="surrogate"):
        canonical_json({"a": "\ud800"})


# ----- hostile manifests: each refused with the field's path -----

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target: Any = data
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[leaf] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, leaf = path.split(".")
        target: Any = data
        for part in parents:
            target = target[part]
        del target[leaf]

    return mutate


HOSTILE: list[Any] = [
    pytest.param(
        _set("licence", {}), 'manifest.licence: unknown field; did you mean "license"', id="unknown-key"
    ),
    pytest.param(_set("license.price", 5), "manifest.license.price: unknown field", id="unknown-nested-key"),
    pytest.param(
        _set("license.commercial_use", "yes"),
        'manifest.license.commercial_use: expected true/false, got "yes"',
        id="bool-as-text",
    ),
    pytest.param(
        _set("license.derivatives", 1), "manifest.license.derivatives: expected true/false", id="bool-as-int"
    ),
    pytest.param(_set("size", True), "manifest.size: expected an integer", id="size-bool"),
    pytest.param(_set("size", 1.5), "manifest.size: expected an integer", id="size-float"),
    pytest.param(_set("size", -1), "manifest.size: expected an integer from 0", id="size-negative"),
    pytest.param(_set("size", 2**64), "manifest.size: expected an integer from 0", id="size-huge"),
    pytest.param(_set("version", "1.2"), "manifest.version: expected a semantic version", id="semver-short"),
    pytest.param(_set("version", "v1.2.0"), "manifest.version", id="semver-v-prefix"),
    pytest.param(_set("version", "01.2.0"), "manifest.version", id="semver-leading-zero"),
    pytest.param(_set("version", "1.2.0-01"), "leading zero", id="semver-prerelease-leading-zero"),
    pytest.param(_set("version", "1.2.0-"), "manifest.version", id="semver-empty-prerelease"),
    pytest.param(_set("version", "1.2.0+b..1"), "manifest.version", id="semver-empty-build-identifier"),
    pytest.param(_set("version", 1), "manifest.version: expected a semantic version", id="version-int"),
    pytest.param(_set("name", "Acme/pixel"), "manifest.name: .*lower-case", id="name-upper-case"),
    pytest.param(_set("name", "acme"), 'manifest.name: expected "namespace/adapter"', id="name-no-slash"),
    pytest.param(_set("name", "acme/pixel/art"), "manifest.name", id="name-two-slashes"),
    pytest.param(_set("name", "acme/../etc"), "manifest.name", id="name-dot-dot"),
    pytest.param(_set("name", "a/pixel"), "manifest.name: .* expected 2 to 39", id="namespace-too-short"),
    pytest.param(_set("name", "acme/pixel--art"), "manifest.name", id="name-double-hyphen"),
    pytest.param(_set("name", "acme/-pixel"), "manifest.name", id="name-leading-hyphen"),
    pytest.param(
        _set("name", "acme/" + "a" * 65), "manifest.name: .* expected 1 to 64", id="adapter-too-long"
    ),
    pytest.param(_set("name", "acme/pixel\u0430rt"), "manifest.name", id="name-homoglyph"),
    pytest.param(
        _set("base_model.family", "sdxl-turbo"),
        "manifest.base_model.family: expected one of",
        id="unknown-family",
    ),
    pytest.param(_set("adapter.type", "dora"), "manifest.adapter.type: expected one of", id="unknown-type"),
    pytest.param(
        _set("consent.subject", "person"),
        "manifest.consent.subject: expected one of",
        id="unknown-consent-subject",
    ),
    pytest.param(_set("consent.status", "Obtained"), "manifest.consent.status", id="enum-wrong-case"),
    pytest.param(
        _set("digests.sha256", "A" * 64),
        "manifest.digests.sha256: expected 64 lower-case hex",
        id="digest-upper-case",
    ),
    pytest.param(_set("digests.sha256", "1" * 63), "manifest.digests.sha256", id="digest-short"),
    pytest.param(_set("digests.autov3", "g" * 64), "manifest.digests.autov3", id="digest-not-hex"),
    pytest.param(_set("digests.md5", "1" * 32), "manifest.digests.md5: unknown field", id="digest-unknown"),
    pytest.param(
        _set("dataset.sha256", "1" * 64 + "\n"), "manifest.dataset.sha256", id="digest-trailing-newline"
    ),
    pytest.param(
        _set("creators.0.name", "Jo\x1b[31mPark"),
        r"manifest.creators\[0\].name: control character U\+001B",
        id="ansi-escape-in-name",
    ),
    pytest.param(
        _set("creators.1.role", "trainer\nadmin"),
        r"manifest.creators\[1\].role: control character",
        id="newline-in-single-line-field",
    ),
    pytest.param(
        _set("description", "ok \u202e evil"),
        r"manifest.description: control character U\+202E",
        id="bidi-override",
    ),
    pytest.param(
        _set("description", "a\x00b"), "manifest.description: control character U", id="nul-in-text"
    ),
    pytest.param(
        _set("description", "x" * 8001),
        "manifest.description: text is 8001 characters; the limit is 8000",
        id="description-too-long",
    ),
    pytest.param(
        _set("trigger_words", ["w"] * 33),
        "manifest.trigger_words: list has 33 items; the limit is 32",
        id="too-many-trigger-words",
    ),
    pytest.param(
        _set("trigger_words", ["a", "a"]), r"manifest.trigger_words\[1\]: duplicate", id="duplicate-trigger"
    ),
    pytest.param(
        _set("trigger_words", "pxart"), "manifest.trigger_words: expected a list", id="list-as-text"
    ),
    pytest.param(
        _set("trigger_words", [""]),
        r"manifest.trigger_words\[0\]: expected non-empty text",
        id="empty-trigger-word",
    ),
    pytest.param(_set("tags", ["Pixel Art"]), r"manifest.tags\[0\]: expected a lower-case tag", id="bad-tag"),
    pytest.param(
        _set("license.id", "MIT OR <script>"), "manifest.license.id: expected an SPDX", id="bad-licence-id"
    ),
    pytest.param(
        _set("license.url", "javascript:alert(1)"), "manifest.license.url: expected an http", id="bad-url"
    ),
    pytest.param(
        _set("created", "2025-03-14 09:30:00"), "manifest.created: expected an RFC 3339", id="created-no-t"
    ),
    pytest.param(_set("created", "2025-03-14T09:30:00+02:00"), "manifest.created", id="created-not-utc"),
    pytest.param(
        _set("created", "2025-02-30T09:30:00Z"), "manifest.created: .* not a real date", id="created-feb-30"
    ),
    pytest.param(
        _set("adapter.rank", 0), "manifest.adapter.rank: expected an integer from 1", id="rank-zero"
    ),
    pytest.param(_set("adapter.alpha", "4"), "manifest.adapter.alpha: expected a number", id="alpha-text"),
    pytest.param(
        _set("adapter.targets", ["x"] * 2), r"manifest.adapter.targets\[1\]: .*out of order", id="dup-targets"
    ),
    pytest.param(
        _set("adapter.targets", ["b", "a"]),
        r"manifest.adapter.targets\[1\]: .*expected sorted",
        id="unsorted-targets",
    ),
    pytest.param(
        _set("derived_from.0.version", "latest"), r"manifest.derived_from\[0\].version", id="lineage-version"
    ),
    pytest.param(_set("derived_from.0.name", "Acme"), r"manifest.derived_from\[0\].name", id="lineage-name"),
    pytest.param(
        _set("creators", [{}]), r"manifest.creators\[0\].name: missing required field", id="creator-no-name"
    ),
    pytest.param(_set("consent", None), "manifest.consent: expected a table, got null", id="null-table"),
    pytest.param(_set("description", None), "manifest.description: expected text, got null", id="null-text"),
    pytest.param(
        _drop("license.commercial_use"),
        "manifest.license.commercial_use: missing required field",
        id="missing-licence-field",
    ),
    pytest.param(_drop("consent"), "manifest.consent: missing required field", id="missing-consent"),
    pytest.param(_drop("digests"), "manifest.digests: missing required field", id="missing-digests"),
    pytest.param(_drop("size"), "manifest.size: missing required field", id="missing-size"),
]


@pytest.mark.parametrize(("mutate", "message"), HOSTILE)
def test_hostile_manifest_is_refused_with_its_field_path(mutate: Mutation, message: str) -> None:
    data = complete_dict()
    mutate(data)
    with pytest.raises(InputError, match=message):
        Manifest.from_json(data)
    with pytest.raises(InputError, match=message):
        Manifest.from_json_bytes(json.dumps(data).encode())


def test_manifest_over_the_size_cap_is_refused() -> None:
    with pytest.raises(PayloadTooLargeError):
        Manifest.from_toml("#" * (4 * 2**20 + 1))


def test_invalid_toml_reports_line_and_column() -> None:
    with pytest.raises(InputError, match="not valid TOML.*line 2"):
        ManifestDraft.from_toml('name = "acme/x"\nversion = \n')


def test_toml_local_datetime_without_offset_is_refused() -> None:
    text = EXAMPLE.read_text().replace("created = 2025-03-14T09:30:00Z", "created = 2025-03-14T09:30:00")
    with pytest.raises(InputError, match="manifest.created: expected a UTC time"):
        ManifestDraft.from_toml(text)


# ----- names and versions -----


def test_semver_precedence_follows_the_specification() -> None:
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
        "10.0.0",
    ]
    assert sorted(reversed(ordered), key=version_key) == ordered
    assert version_key("1.0.0+build.5") == version_key("1.0.0")
    assert max(["1.9.0", "1.10.0", "1.10.0-rc.1"], key=version_key) == "1.10.0"


def test_semver_round_trips_its_text() -> None:
    version = SemVer.parse("1.2.3-rc.1+build.0042")
    assert (version.major, version.prerelease, version.build) == (1, ("rc", "1"), ("build", "0042"))
    assert str(version) == "1.2.3-rc.1+build.0042"


@pytest.mark.parametrize(
    "name", ["acme/pixel-art", "ab/x", "studio-9/sdxl-ink-v2", "a" * 39 + "/" + "b" * 64]
)
def test_valid_names_are_accepted(name: str) -> None:
    assert check_name(name) == name


# ----- completion from file facts -----


def test_completion_fills_every_file_fact_from_the_file() -> None:
    manifest = complete_example()
    assert manifest.size == SIZE
    assert (manifest.digests.sha256, manifest.digests.autov3, manifest.digests.blake3) == (
        HASHES.sha256,
        HASHES.autov3,
        HASHES.blake3,
    )
    assert manifest.digests.autov2 is None  # only sha256, autov3 and blake3 are filled in
    assert (manifest.adapter.format, manifest.adapter.type, manifest.adapter.rank) == ("kohya", "lora", 8)
    assert manifest.adapter.alpha == 4.0
    assert manifest.adapter.targets == tuple(sorted(FACTS.targets))


def test_file_without_rank_or_alpha_leaves_them_out() -> None:
    manifest = complete_example(rank=None, alpha=None, ranks=())
    assert manifest.adapter.rank is None and manifest.adapter.alpha is None
    assert "rank" not in manifest.to_json()["adapter"]


def test_draft_without_created_gets_the_completion_time() -> None:
    text = EXAMPLE.read_text().replace("created = 2025-03-14T09:30:00Z\n", "")
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    manifest = complete_manifest(
        ManifestDraft.from_toml(text), facts=FACTS, hashes=HASHES, size=SIZE, now=now
    )
    assert manifest.created == now
    assert manifest.to_json()["created"] == "2026-01-02T03:04:05Z"


def test_draft_still_refuses_unknown_fields_and_requires_provenance() -> None:
    text = EXAMPLE.read_text()
    with pytest.raises(InputError, match="manifest.license: missing required field"):
        ManifestDraft.from_toml(text.split("[license]")[0])
    with pytest.raises(InputError, match="manifest.adapter.ranks: unknown field"):
        ManifestDraft.from_toml(text + "[adapter]\nranks = [8]\n")


def _draft_with(extra: str) -> ManifestDraft:
    text = EXAMPLE.read_text()
    return ManifestDraft.from_toml(text.replace("[base_model]\n", "[base_model]\n" + extra, 1))


def test_author_family_contradicting_the_tensors_is_refused() -> None:
    with pytest.raises(
        UnprocessableError, match='manifest.base_model.family: the manifest says "sd1", the file shows "sdxl"'
    ):
        complete_manifest(_draft_with('family = "sd1"\n'), facts=FACTS, hashes=HASHES, size=SIZE)


def test_author_family_cannot_be_confirmed_on_an_unknown_layout() -> None:
    with pytest.raises(UnprocessableError, match="cannot tell the family"):
        complete_manifest(
            _draft_with('family = "sdxl"\n'),
            facts=dataclasses.replace(FACTS, family="unknown"),
            hashes=HASHES,
            size=SIZE,
        )


def test_every_contradiction_is_reported_at_once() -> None:
    text = (
        "size = 99\n"
        + EXAMPLE.read_text()
        + (
            f'[digests]\nsha256 = "{"2" * 64}"\nautov3 = "{"3" * 64}"\nautov2 = "{"9" * 10}"\n'
            '[adapter]\nrank = 16\ntype = "lokr"\n'
        )
    )
    with pytest.raises(UnprocessableError) as caught:
        complete_manifest(ManifestDraft.from_toml(text), facts=FACTS, hashes=HASHES, size=SIZE)
    message = str(caught.value)
    for expected in (
        "manifest.size: the manifest says 99, the file shows 123456",
        "manifest.digests.sha256",
        "manifest.digests.autov2",
        "manifest.adapter.rank: the manifest says 16",
        'manifest.adapter.type: the manifest says "lokr", the file shows "lora"',
    ):
        assert expected in message
    assert "autov3" not in message  # the author's autov3 agrees with the file


def test_author_values_that_agree_with_the_file_are_accepted() -> None:
    targets = ", ".join(f'"{t}"' for t in reversed(FACTS.targets))
    draft = ManifestDraft.from_toml(
        EXAMPLE.read_text() + f'[adapter]\nrank = 8\nalpha = 4.001\nformat = "kohya"\ntargets = [{targets}]\n'
    )
    manifest = complete_manifest(draft, facts=FACTS, hashes=HASHES, size=SIZE)
    assert manifest.adapter.alpha == 4.0  # the file's value, not the author's rounding


def test_author_alpha_on_a_file_without_alpha_is_refused() -> None:
    draft = ManifestDraft.from_toml(EXAMPLE.read_text() + "[adapter]\nalpha = 8\n")
    with pytest.raises(
        UnprocessableError, match="manifest.adapter.alpha: the manifest says 8.0, the file shows no value"
    ):
        complete_manifest(draft, facts=dataclasses.replace(FACTS, alpha=None), hashes=HASHES, size=SIZE)


def test_complete_manifest_rechecks_a_complete_manifest_against_another_file() -> None:
    manifest = complete_example()
    other = dataclasses.replace(HASHES, sha256="4" * 64)
    with pytest.raises(UnprocessableError, match="manifest.digests.sha256"):
        complete_manifest(manifest, facts=FACTS, hashes=other, size=SIZE)


# ----- documentation -----


def test_docs_describe_every_manifest_field() -> None:
    docs = (ROOT / "docs" / "manifest.md").read_text()
    classes = [Manifest, *(f.metadata["table"] for f in dataclasses.fields(Manifest) if f.metadata["table"])]
    classes += [
        f.metadata["items"]["table"]
        for f in dataclasses.fields(Manifest)
        if f.metadata["items"] and f.metadata["items"]["table"]
    ]
    for cls in classes:
        for field in dataclasses.fields(cls):
            assert f"`{field.name}`" in docs, (
                f"docs/manifest.md does not describe {cls.__name__}.{field.name}"
            )
