"""`lorareg inspect`: facts of real files, exact JSON keys, hash claims checked, no terminal injection."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lorareg.adapter.facts import compute_facts
from lorareg.adapter.hashing import HASH_NAMES
from lorareg.adapter.inspect import JSON_KEYS, Inspection, inspect_file
from lorareg.cli.inspect_cmd import _print_inspection
from lorareg.errors import InputError
from tests.fixtures.adapters import MakeAdapter
from tests.support.cli_runner import run_main as run_cli
from tests.support.lora_factory import EXPECTED, KINDS, build_header

DESIGN_KEYS = [
    "size",
    "family",
    "format",
    "type",
    "rank",
    "alpha",
    "targets",
    "text_encoder",
    "tensors",
    "hashes",
]
DESIGN_KEYS += ["metadata"]


@pytest.mark.parametrize("kind", KINDS)
def test_inspect_file_reads_family_format_rank_and_alpha_from_a_real_file(
    kind: str, make_adapter: MakeAdapter
) -> None:
    path = make_adapter(kind, rank=1, blocks=1, alpha=0.5)
    facts = inspect_file(path, with_hashes=False).facts
    expected = EXPECTED[kind]
    assert (facts.family, facts.format, facts.type, facts.rank) == (
        expected.family,
        expected.format,
        expected.type,
        1,
    )
    assert facts.alpha == (0.5 if expected.has_alpha else None)


def test_full_sdxl_kohya_file_inspects_as_722_unet_modules(make_adapter: MakeAdapter) -> None:
    path = make_adapter("sdxl-kohya", rank=1, blocks=None, text_encoder=False)
    facts = inspect_file(path, with_hashes=False).facts
    assert (facts.family, len(facts.targets), facts.tensors) == ("sdxl", 722, 3 * 722)


def test_inspect_json_has_exactly_the_design_keys_first(
    make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "inspect", str(make_adapter("sd1-kohya")), "--json")
    doc = json.loads(out)
    assert code == 0
    assert list(doc)[: len(DESIGN_KEYS)] == DESIGN_KEYS == list(JSON_KEYS)
    assert set(doc) - set(DESIGN_KEYS) == {
        "ranks",
        "parameters",
        "dtypes",
        "components",
        "claims",
        "notes",
        "hints",
    }
    assert list(doc["hashes"]) == list(HASH_NAMES)
    assert all(v is None or v == v.lower() for v in doc["hashes"].values())
    assert (doc["family"], doc["format"], doc["type"], doc["rank"], doc["alpha"]) == (
        "sd1",
        "kohya",
        "lora",
        2,
        1.0,
    )


def test_no_hashes_gives_null_hashes(
    make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(monkeypatch, capsys, "inspect", str(make_adapter()), "--json", "--no-hashes")
    assert code == 0 and json.loads(out)["hashes"] is None


def test_wrong_sshs_model_hash_is_flagged_and_a_right_one_is_not(make_adapter: MakeAdapter) -> None:
    lying = make_adapter("sd1-kohya", metadata={"sshs_model_hash": "0" * 64})
    autov3 = inspect_file(lying).hashes.autov3  # type: ignore[union-attr]
    assert [c.key for c in inspect_file(lying).claims] == ["sshs_model_hash"]
    honest = make_adapter(
        "sd1-kohya", metadata={"sshs_model_hash": autov3, "modelspec.hash_sha256": "0x" + autov3}
    )
    assert inspect_file(honest).claims == ()


def test_human_output_escapes_invisible_and_markup_text_from_the_file(
    make_adapter: MakeAdapter, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    value = "[bold red]x[/bold red]\u200fabc\u200b"  # RLM and ZWSP pass the strict reader; markup is text
    path = make_adapter("sdxl-kohya", metadata={"ss_output_name": value})
    code, out, _ = run_cli(monkeypatch, capsys, "inspect", str(path))
    assert code == 0
    assert "\u200f" not in out and "\u200b" not in out and "\x1b" not in out
    assert "[bold red]x[/bold red]\\u200fabc\\u200b" in out
    assert "sdxl" in out and "kohya" in out


@pytest.mark.parametrize(
    "value",
    ["\x1b[2J\x1b[Hfake prompt $ ", "safe\u202etxt.exe", "\u2067isolate\u2069", "bell\x07\x9b31m"],
    ids=["clear-screen", "bidi-override", "bidi-isolate", "bell-and-c1-csi"],
)
def test_human_renderer_never_writes_control_characters(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    header, scalars = build_header("sd1-kohya", metadata={value: value, "ss_base_model_version": value})
    inspection = Inspection(
        path=Path(value), header=header, facts=compute_facts(header, scalars), hashes=None
    )
    _print_inspection(inspection)
    out = capsys.readouterr().out
    assert not any(ch in out for ch in "\x1b\x07\x9b\u202e\u2067\u2069")
    assert "\\x1b" in out or "\\u202e" in out or "\\u2067" in out or "\\x07" in out


def test_file_with_escape_sequence_in_a_metadata_key_is_refused_in_one_safe_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.numpy import save_file

    from tests.support.lora_factory import build_tensors

    path = tmp_path / "evil.safetensors"
    save_file(build_tensors("sd1-kohya", blocks=1), str(path), metadata={"x\x1b[2J\u202e": "v"})
    code, out, err = run_cli(monkeypatch, capsys, "inspect", str(path))
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "\x1b" not in err and "\u202e" not in err


MOJIBAKE = {
    "ss_training_comment": "don\u00e2\u0080\u0099t stop",  # latin-1 mojibake of a UTF-8 apostrophe
    "modelspec.title": "\x1b]0;pwned\x07Ink\x1b[2J",  # an ESC (and a title-setting OSC)
    "ss_output_name": "one\u0085two\u2028three\nfour\rfive\u202eexe",  # NEL, LS, LF, CR, bidi override
}
_RAW_CONTROLS = "\x1b\x07\x85\x80\x99\u2028\u202e\r"


def test_file_with_mojibake_and_escapes_in_metadata_values_is_inspected_and_shown_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # False refusals of real files: metadata values are kept, and shown escaped on one line per field.
    from safetensors.numpy import save_file

    from tests.support.lora_factory import build_tensors

    path = tmp_path / "mojibake.safetensors"
    save_file(build_tensors("sd1-kohya", blocks=1), str(path), metadata=MOJIBAKE)
    code, out, err = run_cli(monkeypatch, capsys, "inspect", str(path), "--no-hashes")
    assert code == 0 and err == ""
    assert not any(ch in out for ch in _RAW_CONTROLS)
    assert "don\u00e2\\x80\\x99t stop" in out
    lines = [line for line in out.splitlines() if "ss_output_name" in line]
    assert len(lines) == 1 and "one\\x85two\\u2028three four\\x0dfive\\u202eexe" in lines[0]
    code, out, err = run_cli(monkeypatch, capsys, "inspect", str(path), "--no-hashes", "--json")
    assert code == 0 and err == ""
    assert not any(ch in out for ch in _RAW_CONTROLS)
    assert json.loads(out)["metadata"] == MOJIBAKE
    assert len(out.splitlines()) == len(out.split("\n")) - 1  # no line breaks but the JSON's own
    fields = [line.strip() for line in out.splitlines() if '"ss_output_name"' in line]  # metadata, hints
    assert fields and all(
        json.loads("{" + f.rstrip(",") + "}") == {"ss_output_name": MOJIBAKE["ss_output_name"]}
        for f in fields
    )


def test_missing_file_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "inspect", str(tmp_path / "nope.safetensors"))
    assert (code, out) == (3, "") and err.startswith("error: ") and "nope.safetensors" in err


def test_directory_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "inspect", str(tmp_path))
    assert (code, out) == (2, "") and err.startswith("error: ")


def test_directory_is_an_input_error_in_the_library(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        inspect_file(tmp_path)


def test_installed_command_inspects_without_importing_torch(make_adapter: MakeAdapter) -> None:
    code = (
        "import sys, runpy; sys.argv = ['lorareg', 'inspect', sys.argv[1], '--json'];"
        "from lorareg.cli import main\ntry: main()\nexcept SystemExit: pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    path = make_adapter("flux1-kohya")
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert json.loads(result.stdout)["family"] == "flux1"
    assert result.stderr.strip() == "False"
