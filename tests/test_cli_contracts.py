"""The CLI contract of DESIGN.md for every command: one ``error:`` line on stderr and the documented exit
code (2 bad input or usage, 3 not found) for usage mistakes and missing files; help and version unchanged;
``show`` prints hashes as ``inspect`` does; a takedown needs the claimant's own ``--good-faith``.

Most cases run in-process through :func:`lorareg.cli.main` (what the console script runs) to stay fast; the
help output, drawn by rich for a real terminal, is checked in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lorareg.signing.trust import TrustStore
from tests.fixtures.keys import KeyFiles
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main
from tests.support.lora_factory import write_adapter
from tests.test_signing_interop import MANIFEST_TOML

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: a command that reached the network would exit 4

# (id, argv with {dir} for a scratch directory holding adapter.safetensors, m.toml, key.key/pub,
#  trust.toml, a directory sub/ and a file plain.txt; expected exit code; a fragment of the one stderr line)
CASES: list[tuple[str, list[str], int, str]] = [
    ("unknown-command", ["no-such-command"], 2, "No such command 'no-such-command'"),
    ("unknown-option", ["inspect", "{dir}/adapter.safetensors", "--jsn"], 2, "No such option: --jsn"),
    ("missing-argument", ["verify"], 2, "Missing argument 'file'"),
    ("missing-option", ["publish", "{dir}/adapter.safetensors"], 2, "Missing option '--manifest'"),
    ("bad-int", ["search", "--limit", "0"], 2, "Invalid value for '--limit'"),
    ("bad-port", ["serve", "--port", "eighty"], 2, "Invalid value for '--port'"),
    ("bad-choice", ["takedown", "request", "a/b@1.0.0", "--reason", "bogus", "--claimant", "c",
                    "--contact", "c@example.org", "--details", "d", "--good-faith"], 2, "'--reason'"),
    ("decide-without-reason", ["takedown", "decide", "td_x", "--uphold"], 2, "Missing option '--reason'"),
    ("keygen-without-out", ["keygen"], 2, "Missing option '--out'"),
    ("inspect-missing-file", ["inspect", "{dir}/nope.safetensors"], 3, "nope.safetensors"),
    ("dataset-hash-missing-dir", ["dataset-hash", "{dir}/nope"], 3, "no such directory"),
    ("sign-missing-manifest", ["sign", "{dir}/adapter.safetensors", "--manifest", "{dir}/nope.toml",
                               "--key", "{dir}/key.key"], 3, "manifest file"),
    ("verify-missing-signature", ["verify", "{dir}/adapter.safetensors", "--key", "{dir}/key.pub",
                                  "--signature", "{dir}/nope.sig"], 3, "signature file"),
    ("publish-missing-file", ["publish", "{dir}/nope.safetensors", "--manifest", "{dir}/m.toml",
                              "--key", "{dir}/key.key"], 3, "nope.safetensors"),
    ("publish-missing-manifest", ["publish", "{dir}/adapter.safetensors", "--manifest", "{dir}/nope.toml",
                                  "--key", "{dir}/key.key"], 3, "manifest file"),
    ("publish-missing-key", ["publish", "{dir}/adapter.safetensors", "--manifest", "{dir}/m.toml",
                             "--key", "{dir}/nope.key"], 3, "key file"),
    ("publish-missing-preview", ["publish", "{dir}/adapter.safetensors", "--manifest", "{dir}/m.toml",
                                 "--key", "{dir}/key.key", "--preview", "{dir}/nope.png"], 3, "preview file"),
    ("publish-directory-as-manifest", ["publish", "{dir}/adapter.safetensors", "--manifest", "{dir}/sub",
                                       "--key", "{dir}/key.key"], 2, "not a regular file"),
    ("pull-out-is-a-file", ["pull", "a/b@1.0.0", "--out", "{dir}/plain.txt", "--trust", "{dir}/trust.toml"],
     2, "is a file"),
    ("pull-no-verify-without-out", ["pull", "a/b@1.0.0", "--no-verify"], 2, "--out"),
    ("pull-trust-is-a-directory", ["pull", "a/b@1.0.0", "--trust", "{dir}/sub"], 2, "trust file"),
    ("pull-trust-missing", ["pull", "a/b@1.0.0", "--trust", "{dir}/nope.toml"], 2, "lorareg trust add"),
    ("trust-add-missing-key", ["trust", "add", "{dir}/nope.pub", "--trust", "{dir}/t.toml"], 3, "key file"),
    ("takedown-without-good-faith", ["takedown", "request", "a/b@1.0.0", "--reason", "style",
                                     "--claimant", "c", "--contact", "c@example.org", "--details", "d"],
     2, "--good-faith"),
    ("import-missing-dir", ["import", "{dir}/nope"], 3, "does not exist"),
    ("import-file-as-dir", ["import", "{dir}/plain.txt"], 2, "is not a folder"),
    ("import-publish-without-key", ["import", "{dir}/sub", "--publish", "--namespace", "acme"], 2, "--key"),
    ("import-bad-version", ["import", "{dir}/sub", "--version", "1.0"], 2, "version"),
    ("audit-missing-dir", ["audit", "{dir}/nope", "--trust", "{dir}/trust.toml"], 3, "does not exist"),
    ("pull-into-bad-layout", ["pull", "a/b@1.0.0", "--into", "{dir}/ui", "--layout", "invokeai"], 2,
     "--layout"),
    ("pull-into-no-verify", ["pull", "a/b@1.0.0", "--into", "{dir}/ui", "--no-verify"], 2, "verified"),
    ("pull-into-a-file", ["pull", "a/b@1.0.0", "--into", "{dir}/plain.txt", "--trust", "{dir}/trust.toml"],
     2, "not a folder"),
]  # fmt: skip


@pytest.fixture
def scratch(tmp_path: Path, publisher_key: KeyFiles, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_adapter(tmp_path / "adapter.safetensors", "sd1-kohya")
    (tmp_path / "m.toml").write_text(MANIFEST_TOML)
    (tmp_path / "key.key").write_bytes(publisher_key.private_path.read_bytes())
    (tmp_path / "key.key").chmod(0o600)
    (tmp_path / "key.pub").write_bytes(publisher_key.public_path.read_bytes())
    trusted = TrustStore.empty().with_key(
        publisher_key.key.public_key, label="acme", role="publisher", namespace="acme"
    )
    trusted.save(tmp_path / "trust.toml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "plain.txt").write_text("a file, not a directory")
    monkeypatch.setenv("LORAREG_REGISTRY", UNREACHABLE)
    monkeypatch.setenv("LORAREG_TRUST", str(tmp_path / "no-trust.toml"))
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LORAREG_TOKEN", raising=False)
    monkeypatch.delenv("LORAREG_KEY_PASSWORD", raising=False)
    return tmp_path


@pytest.mark.parametrize(("argv", "code", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_every_usage_error_and_missing_file_is_one_error_line_with_its_exit_code(
    scratch: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    fragment: str,
) -> None:
    args = [a.replace("{dir}", str(scratch)) for a in argv]
    got, out, err = run_main(monkeypatch, capsys, *args)
    assert (got, out) == (code, ""), err
    assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), err
    assert fragment in err
    assert not (scratch / "cache" / "blobs").exists()


def test_usage_error_names_the_help_of_its_own_command(
    scratch: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, err = run_main(monkeypatch, capsys, "takedown", "decide", "td_x", "--uphold")
    assert err.count("\n") == 1 and " Try '" in err  # the program name depends on how it was started
    assert err.rstrip().endswith(" takedown decide --help'")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lorareg", *args], capture_output=True, text=True, timeout=60
    )


def test_help_version_and_bare_command_still_print_as_before() -> None:
    bare = _cli()
    assert bare.returncode == 2 and "Usage:" in bare.stdout and "Commands" in bare.stdout
    assert bare.stderr == ""  # the help is the whole answer: no error line under it
    assert _cli("--version").stdout.startswith("lorareg ")
    group = _cli("trust")
    assert group.returncode == 2 and "add-registry" in group.stdout and group.stderr == ""
    helped = _cli("trust", "policy", "--help")
    assert helped.returncode == 0 and helped.stderr == ""
    assert "[policy] table" in " ".join(helped.stdout.split())  # not swallowed as rich markup


def test_show_prints_a_missing_autov1_as_inspect_does(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = live_server.add_publisher("acme")
    path, bundle = live_server.adapter("acme/tiny", "1.0.0", family="sd1")
    assert path.stat().st_size < 2 * 2**20  # AutoV1 is undefined below 2 MiB
    with live_server.client(token) as client:
        client.publish(path, bundle)
    code, out, err = run_main(monkeypatch, capsys, "show", "acme/tiny@1.0.0", "--registry", live_server.url)
    assert code == 0, err
    assert "  autov1         n/a (file under 2 MiB)" in out.splitlines() and "None" not in out
    code, out, err = run_main(monkeypatch, capsys, "inspect", str(path))
    assert code == 0, err
    assert "n/a (file under 2 MiB)" in out
