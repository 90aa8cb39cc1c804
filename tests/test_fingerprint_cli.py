"""``lorareg compare`` and ``lorareg inspect --fingerprint``: contract keys, exit codes, a fast --help.

Stories: a pipeline compares a suspected re-upload with the original (JSON keys of DESIGN.md, in order);
adapters of two families are reported incomparable, not similar; hostile or missing files give one line and
the documented exit code; ``lorareg --help`` does not pay for numpy.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tests.support.fingerprint_variants as v
from tests.support.cli_runner import run_main
from tests.support.safetensors_builders import entry, safetensors_bytes

KEYS = [
    "similarity",
    "coverage",
    "scale",
    "modules_shared",
    "modules_a",
    "modules_b",
    "family_a",
    "family_b",
]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a = v.trained(v.layout("sd1", blocks=1), seed=0)
    original = v.write(tmp_path / "orig.safetensors", a, base="sd1", alpha=1.0)
    copy = v.write(tmp_path / "copy.safetensors", v.svd_truncated(a), base="sd1", fmt="peft", dtype="BF16")
    return original, copy


def test_compare_json_of_a_reupload_has_the_contract_keys(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(monkeypatch, capsys, "compare", str(pair[0]), str(pair[1]), "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert list(doc)[: len(KEYS)] == KEYS
    assert doc["similarity"] >= 0.9 and doc["coverage"] == pytest.approx(1.0)
    assert doc["family_a"] == doc["family_b"] == "sd1"
    assert doc["modules_shared"] == doc["modules_a"] == doc["modules_b"] > 0
    assert 0.9 < doc["scale"] <= 1.0  # the SVD keeps most of ‖ΔW‖


def test_compare_table_names_both_files(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(pair[0].parent)
    code, out, _ = run_main(monkeypatch, capsys, "compare", pair[0].name, pair[1].name)
    assert code == 0
    assert "similarity" in out and "copy.safetensors" in out and "coverage" in out


def test_adapters_of_different_families_are_incomparable(
    pair: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    flux = v.write(tmp_path / "flux.safetensors", v.trained(v.layout("flux1", blocks=1)), base="flux1")
    code, out, _ = run_main(monkeypatch, capsys, "compare", str(pair[0]), str(flux), "--json")
    doc = json.loads(out)
    assert code == 0
    assert (doc["similarity"], doc["family_a"], doc["family_b"]) == (0.0, "sd1", "flux1")
    assert "different base families" in doc["note"]


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (None, 3, "no such file"),
        (b"PK\x03\x04 not an adapter", 2, ""),
        (b"\x02\x00\x00\x00\x00\x00\x00\x00{}", 2, "no adapter modules"),
    ],
    ids=["missing-file", "zip-archive", "no-adapter-modules"],
)
def test_bad_input_gives_one_line_and_its_exit_code(
    content: bytes | None,
    code: int,
    message: str,
    pair: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.safetensors"
    if content is not None:
        bad.write_bytes(content)
    got, out, err = run_main(monkeypatch, capsys, "compare", str(pair[0]), str(bad))
    assert got == code and out == ""
    assert err.startswith("error:") and err.count("\n") == 1 and message in err


def test_inspect_fingerprint_adds_the_pooled_summary(
    pair: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_main(monkeypatch, capsys, "inspect", str(pair[0]), "--json", "--fingerprint")
    doc = json.loads(out)
    assert code == 0 and doc["family"] == "sd1"
    assert doc["fingerprint"]["family"] == "sd1" and len(doc["fingerprint"]["pooled"]) == 256
    code, out, _ = run_main(monkeypatch, capsys, "inspect", str(pair[0]), "--json")
    assert "fingerprint" not in json.loads(out)


def test_inspect_fingerprint_of_a_file_without_adapter_modules_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The sketch runs in a forked child: its refusal must come back as the same one-line error."""
    plain = tmp_path / "plain.safetensors"
    plain.write_bytes(safetensors_bytes({"model.weight": entry("F32", [2, 2], 0, 16)}, bytes(16)))
    code, out, err = run_main(monkeypatch, capsys, "inspect", str(plain), "--json", "--fingerprint")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no adapter modules of a known kind" in err


@pytest.mark.parametrize("args", [["--help"], ["compare", "--help"]], ids=["root-help", "compare-help"])
def test_help_does_not_import_numpy(args: list[str]) -> None:
    code = (
        f"import sys; sys.argv = ['lorareg', *{args!r}]\n"
        "from lorareg.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('NUMPY', 'numpy' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "NUMPY False" in result.stdout, result.stdout + result.stderr
