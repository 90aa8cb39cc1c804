"""A newcomer's first files (``lorareg sample``) and lineage that cannot point at nothing.

``sample`` makes a structurally valid adapter labelled as random weights, the example manifest and a
picture; bad requests are one line and exit 2. At publish, a ``derived_from`` parent this registry does not
hold is refused unless marked external (``registry = "…"``), which is kept but never linked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lorareg.adapter.inspect import inspect_file
from lorareg.demo.samples import SAMPLE_NOTE
from lorareg.errors import UnprocessableError
from lorareg.images.provenance import read_provenance
from lorareg.manifest import Manifest
from tests.fixtures.registry import Publisher
from tests.support.cli_runner import run_main


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd3", "flux1", "flux2"])
def test_a_sample_adapter_is_read_as_its_family_and_says_it_has_random_weights(
    family: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "my_lora.safetensors"
    code, stdout, _ = run_main(monkeypatch, capsys, "sample", "--family", family, "--out", str(out))
    assert code == 0 and "random weights" in stdout
    inspection = inspect_file(out)
    assert inspection.facts.family == family
    assert inspection.header.metadata["lorareg_sample_note"] == SAMPLE_NOTE


def test_the_sample_manifest_parses_and_names_the_tours_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "my_manifest.toml"
    assert run_main(monkeypatch, capsys, "sample", "--out", str(out))[0] == 0
    from lorareg.manifest import ManifestDraft

    draft = ManifestDraft.from_toml(out.read_text())
    assert draft.values["name"] == "me/pixel-art"


def test_a_sample_picture_is_a_png_with_no_claims_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "picture.png"
    assert run_main(monkeypatch, capsys, "sample", "--out", str(out), "--seed", "3")[0] == 0
    assert read_provenance(out).adapters == ()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--family", "bogus", "--out", "x.safetensors"], "samples exist for", id="unknown-family"
        ),
        pytest.param(["--out", "x.ckpt"], "unknown suffix", id="unknown-suffix"),
        pytest.param(
            ["--out", "x.toml", "--made-with", "a/b@1.0.0"], "applies to a .png", id="made-with-toml"
        ),
        pytest.param(["--out", "x.png", "--made-with", "a/b@1.0.0"], "needs a registry", id="no-registry"),
    ],
)
def test_bad_sample_requests_are_one_line_and_exit_2(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LORAREG_REGISTRY", raising=False)
    code, _, stderr = run_main(monkeypatch, capsys, "sample", *args)
    assert code == 2 and stderr.startswith("error: ") and message in stderr and stderr.count("\n") == 1


def test_an_existing_file_is_not_overwritten_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "mine.safetensors"
    out.write_bytes(b"my real adapter")
    code, _, stderr = run_main(monkeypatch, capsys, "sample", "--out", str(out))
    assert code == 2 and "--force" in stderr and out.read_bytes() == b"my real adapter"


def test_lineage_to_a_version_this_registry_lacks_is_refused_at_publish(publisher: Publisher) -> None:
    lineage = [{"name": "acme/ghost", "version": "1.1.0"}]
    with pytest.raises(UnprocessableError, match=r"derived_from acme/ghost@1.1.0: this registry has no"):
        publisher.publish("child", derived_from=lineage)


def test_lineage_with_the_wrong_sha256_of_a_known_version_is_refused(publisher: Publisher) -> None:
    publisher.publish("parent")
    lineage = [{"name": "acme/parent", "version": "1.0.0", "sha256": "ab" * 32}]
    with pytest.raises(UnprocessableError, match="the manifest says sha256 abab"):
        publisher.publish("child", derived_from=lineage)


def test_lineage_marked_external_is_accepted_and_kept(publisher: Publisher) -> None:
    lineage = [{"name": "civitai/base-style", "version": "3.0.0", "registry": "https://civitai.com"}]
    record = publisher.publish("child", derived_from=lineage)
    parent = Manifest.from_json(record.manifest).derived_from[0]
    assert parent.registry == "https://civitai.com"
    assert publisher.registry.derived_by("civitai/base-style", "3.0.0", limit=10) == []
