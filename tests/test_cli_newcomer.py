"""The CLI as a newcomer meets it (issue 17): output scripts can use, messages that say what to do.

Piped output is never wrapped; ``show`` prints in text what its help promises; ``--help`` has no
``<bool>``/``<str>`` tags; a missing file is exit 3 in every command that reads one; ``takedown request``
points at the human status page; a token-less write names ``--token`` and ``LORAREG_TOKEN``; and
``from lorareg import load_verified_lora`` without the diffusers extra says which extra to install.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorareg.cli._help import plain_label
from lorareg.demo.samples import sample_adapter_bytes
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main

ROOT = Path(__file__).resolve().parent.parent


def _publish(server: LiveServer, name: str, version: str = "1.0.0", **manifest: object) -> None:
    token = server.add_publisher(name.split("/")[0])
    path, bundle = server.adapter(name, version, **manifest)
    with server.client(token) as client:
        client.publish(path, bundle)


def _lorareg(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a separate process whose stdout is a pipe (not a terminal), as in a script."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80", **(env or {})}
    command = [sys.executable, "-m", "lorareg", *args]
    return subprocess.run(command, cwd=cwd, env=full, capture_output=True, text=True, timeout=60)


def test_piped_inspect_output_is_never_wrapped(tmp_path: Path) -> None:
    (tmp_path / "a.safetensors").write_bytes(sample_adapter_bytes("sdxl"))
    result = _lorareg("inspect", "a.safetensors", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sha_lines = [line for line in result.stdout.splitlines() if line.startswith("sha256")]
    assert len(sha_lines) == 1 and len(sha_lines[0].split()[1]) == 64  # the whole hash on its line
    assert any(line.strip().endswith("self_attn.q_proj") for line in result.stdout.splitlines())


def test_help_has_no_python_type_tags(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["show", "--help"], ["pull", "--help"], ["sample", "--help"]):
        code, out, _ = run_main(monkeypatch, capsys, *command)
        assert code == 0 and "<bool>" not in out and "<str>" not in out and "<Path>" not in out
    assert plain_label("<str>") == "TEXT" and plain_label("<list[str]>") == "TEXT..."
    assert plain_label("<int range>") == "INTEGER RANGE" and plain_label("<a|b>") == "[a|b]"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["inspect", "missing.safetensors"], id="inspect"),
        pytest.param(["dataset-hash", "missing-dir"], id="dataset-hash"),
        pytest.param(["sign", "missing.safetensors", "--manifest", "m.toml", "--key", "k.key"], id="sign"),
        pytest.param(["verify", "missing.safetensors", "--key", "k.pub"], id="verify"),
        pytest.param(["provenance", "missing.png"], id="provenance"),
        pytest.param(["trust", "add", "missing.pub", "--trust", "t.toml"], id="trust-add"),
    ],
)
def test_a_missing_file_is_exit_3_in_every_command(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_main(monkeypatch, capsys, *args)
    assert code == 3, err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_show_prints_what_its_help_promises_in_text(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish(
        live_server,
        "acme/ink",
        trigger_words=["inkstyle"],
        consent={"subject": "style", "status": "obtained"},
        creators=[{"name": "Jo Park", "role": "trainer"}],
    )
    code, out, err = run_main(monkeypatch, capsys, "show", "acme/ink@1.0.0", "--registry", live_server.url)
    assert code == 0, err
    expected = ["status", "active", "base model", "trigger words", "inkstyle", "consent", "style, obtained"]
    expected += ["creators", "Jo Park (trainer)", "licence", "CC-BY-4.0", "credit required", "signers"]
    for words in expected:
        assert words in out, words


def test_takedown_request_points_at_the_status_page_and_a_tokenless_write_names_token_options(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish(live_server, "acme/ink")
    args = ["--reason", "style", "--claimant", "A", "--contact", "a@example.org", "--details", "mine"]
    code, out, err = run_main(
        monkeypatch, capsys, "takedown", "request", "acme/ink@1.0.0", *args, "--good-faith",
        "--registry", live_server.url,
    )  # fmt: skip
    assert code == 0, err
    assert f"{live_server.url}/takedowns/{out.strip()}" in err and "/api/v1/" not in err
    monkeypatch.delenv("LORAREG_TOKEN", raising=False)
    code, _, err = run_main(monkeypatch, capsys, "yank", "acme/ink@1.0.0", "--registry", live_server.url)
    assert code != 0 and "--token" in err and "LORAREG_TOKEN" in err


def test_load_verified_lora_without_the_diffusers_extra_names_the_extra() -> None:
    script = (
        "import sys; sys.modules['torch'] = None\n"  # as on a core install: importing torch fails
        "try:\n    from lorareg import load_verified_lora\n"
        "except ImportError as e:\n    print(e)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    message = result.stdout.strip()
    assert "'diffusers' extra" in message and "pip install 'lorareg[diffusers]'" in message, result.stderr
    assert "\n" not in message


def test_a_bare_name_says_what_it_resolved_to_and_refuses_a_silent_change_of_base_family(
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = live_server.add_publisher("inkworks")
    for version, family in (("1.0.0", "sd1"), ("2.0.0", "sdxl")):
        path, bundle = live_server.adapter("inkworks/ink-wash", version, family=family)
        with live_server.client(token) as client:
            client.publish(path, bundle)
    reviewer = live_server.registry.authenticate(live_server.token("reviewer"))
    live_server.registry.revoke("inkworks/ink-wash@2.0.0", reason="upheld: style", principal=reviewer)
    pull = [
        "pull",
        "inkworks/ink-wash",
        "--no-verify",
        "--out",
        str(tmp_path / "out"),
        "--registry",
        live_server.url,
    ]
    code, out, err = run_main(monkeypatch, capsys, *pull)
    assert code == 1 and out == ""
    assert "resolves to inkworks/ink-wash@1.0.0 (sd1)" in err and "2.0.0 targets sdxl and is revoked" in err
    assert "--any-family" in err
    code, out, err = run_main(monkeypatch, capsys, *pull, "--any-family")
    assert code == 0, err
    assert "resolved inkworks/ink-wash to inkworks/ink-wash@1.0.0 (sd1)" in err and out.strip()


def test_a_bare_name_of_one_family_resolves_quietly_but_says_which_version(
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _publish(live_server, "acme/ink")
    pull = ["pull", "acme/ink", "--no-verify", "--out", str(tmp_path / "out"), "--registry", live_server.url]
    code, _, err = run_main(monkeypatch, capsys, *pull)
    assert code == 0 and "resolved acme/ink to acme/ink@1.0.0 (sdxl)" in err
