"""``lorareg trust``: add, add-registry (against a tiny local HTTP server), list, remove, policy."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lorareg.signing.keys import generate
from lorareg.signing.trust import load_trust
from tests.fixtures.keys import KeyFiles
from tests.support.cli_runner import run_main


class _TTYInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
    tty_answer: str | None = None,
) -> tuple[int, str, str]:
    """Run the CLI in-process (as ``main()`` does for the console script); return (exit code, out, err)."""
    if tty_answer is not None:
        monkeypatch.setattr(sys, "stdin", _TTYInput(tty_answer))
    return run_main(monkeypatch, capsys, *args)


@pytest.fixture
def trust_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LORAREG_TRUST", raising=False)
    return tmp_path / "cfg" / "trust.toml"


@pytest.fixture
def registry_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A loopback HTTP server for ``/api/v1/keys``; tests change ``state["body"]`` and ``state["status"]``."""
    key = generate().public_key
    state: dict[str, Any] = {
        "status": 200,
        "body": json.dumps(
            {"keys": [{"keyid": key.key_id, "public_key": key.pem.decode(), "role": "registry"}]}
        ),
        "keyid": key.key_id,
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            ok = self.path == "/api/v1/keys"
            body = (state["body"] if ok else "{}").encode()
            self.send_response(state["status"] if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_add_publisher_creates_the_trust_file(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    publisher_key: KeyFiles,
) -> None:
    code, out, _ = run(
        monkeypatch,
        capsys,
        "trust",
        "add",
        str(publisher_key.public_path),
        "--role",
        "publisher",
        "--namespace",
        "acme",
        "--label",
        "Acme Studio",
        "--trust",
        str(trust_path),
    )
    assert code == 0 and publisher_key.key_id in out
    entry = load_trust(trust_path).get(publisher_key.key_id)
    assert entry is not None and (entry.role, entry.namespace, entry.label) == (
        "publisher",
        "acme",
        "Acme Studio",
    )


def test_add_publisher_without_namespace_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    publisher_key: KeyFiles,
) -> None:
    code, _, err = run(
        monkeypatch, capsys, "trust", "add", str(publisher_key.public_path), "--trust", str(trust_path)
    )
    assert code == 2 and err.startswith("error:") and "--namespace" in err
    assert not trust_path.exists()


def test_trust_file_from_the_environment_is_used(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    publisher_key: KeyFiles,
) -> None:
    env_path = tmp_path / "env-trust.toml"
    monkeypatch.setenv("LORAREG_TRUST", str(env_path))
    code, _, _ = run(
        monkeypatch, capsys, "trust", "add", str(publisher_key.public_path), "--namespace", "acme"
    )
    assert code == 0 and load_trust(env_path).get(publisher_key.key_id) is not None


def test_list_json_and_remove(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    publisher_key: KeyFiles,
    registry_key: KeyFiles,
) -> None:
    for key, extra in ((publisher_key, ["--namespace", "acme"]), (registry_key, ["--role", "registry"])):
        assert (
            run(
                monkeypatch, capsys, "trust", "add", str(key.public_path), *extra, "--trust", str(trust_path)
            )[0]
            == 0
        )
    code, out, _ = run(monkeypatch, capsys, "trust", "list", "--json", "--trust", str(trust_path))
    listed = json.loads(out)
    assert code == 0 and [k["role"] for k in listed["keys"]] == ["publisher", "registry"]
    assert listed["keys"][0] == {
        "keyid": publisher_key.key_id,
        "label": "publisher",
        "role": "publisher",
        "namespace": "acme",
    }
    code, out, _ = run(
        monkeypatch, capsys, "trust", "remove", publisher_key.key_id[:12], "--trust", str(trust_path)
    )
    assert code == 0 and "removed publisher key" in out
    code, out, _ = run(monkeypatch, capsys, "trust", "list", "--trust", str(trust_path))
    assert publisher_key.key_id not in out and registry_key.key_id in out


def test_remove_unknown_key_exits_not_found(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    publisher_key: KeyFiles,
) -> None:
    run(
        monkeypatch,
        capsys,
        "trust",
        "add",
        str(publisher_key.public_path),
        "--namespace",
        "acme",
        "--trust",
        str(trust_path),
    )
    code, _, err = run(monkeypatch, capsys, "trust", "remove", "deadbeefdeadbeef", "--trust", str(trust_path))
    assert code == 3 and "no trusted key" in err


def test_policy_shows_defaults_and_json(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], trust_path: Path
) -> None:
    trust_path.parent.mkdir(parents=True)
    trust_path.write_text('[policy]\nallowed_licenses = ["MIT"]\nmax_revocation_age = "7d"\n')
    code, out, _ = run(monkeypatch, capsys, "trust", "policy", "--json", "--trust", str(trust_path))
    policy = json.loads(out)
    assert code == 0 and policy["allowed_licenses"] == ["MIT"] and policy["max_revocation_age"] == "7d"
    assert policy["likeness_requires_consent"] is True and policy["max_adapters"] is None
    code, out, _ = run(monkeypatch, capsys, "trust", "policy", "--trust", str(trust_path))
    assert "max_adapters = unset (warn above 2)" in out


def test_commands_on_a_missing_trust_file_explain_how_to_create_one(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lorareg", "trust", "list", "--trust", str(tmp_path / "none.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: no trust file at") and "lorareg trust add" in result.stderr
    assert "Traceback" not in result.stderr


def test_add_registry_with_yes_trusts_the_served_key(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    registry_server: tuple[str, dict[str, Any]],
) -> None:
    url, state = registry_server
    code, out, _ = run(monkeypatch, capsys, "trust", "add-registry", url, "--yes", "--trust", str(trust_path))
    assert code == 0 and f"registry key {state['keyid']}" in out
    entry = load_trust(trust_path).get(state["keyid"])
    assert entry is not None and entry.role == "registry" and entry.label == url


def test_add_registry_never_prompts_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    registry_server: tuple[str, dict[str, Any]],
) -> None:
    url, state = registry_server
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # not a TTY: must not be read
    code, out, err = run(monkeypatch, capsys, "trust", "add-registry", url, "--trust", str(trust_path))
    assert code == 2 and "stdin is not a terminal" in err and "--yes" in err
    assert state["keyid"] in out  # the fingerprint is shown so it can be checked out of band
    assert not trust_path.exists()


@pytest.mark.parametrize(
    ("answer", "trusted"), [("y\n", True), ("n\n", False)], ids=["confirmed", "declined"]
)
def test_add_registry_asks_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    registry_server: tuple[str, dict[str, Any]],
    answer: str,
    trusted: bool,
) -> None:
    url, state = registry_server
    code, _, _ = run(
        monkeypatch, capsys, "trust", "add-registry", url, "--trust", str(trust_path), tty_answer=answer
    )
    assert (code == 0) is trusted
    assert trust_path.exists() is trusted


def test_add_registry_refuses_a_key_id_that_is_not_its_key(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    registry_server: tuple[str, dict[str, Any]],
) -> None:
    url, state = registry_server
    state["body"] = state["body"].replace(state["keyid"], "0" * 64)
    code, _, err = run(monkeypatch, capsys, "trust", "add-registry", url, "--yes", "--trust", str(trust_path))
    assert code == 2 and "is not the id of its key" in err and not trust_path.exists()


def test_add_registry_server_error_is_a_network_error(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    trust_path: Path,
    registry_server: tuple[str, dict[str, Any]],
) -> None:
    url, state = registry_server
    state["status"] = 500
    code, _, err = run(monkeypatch, capsys, "trust", "add-registry", url, "--yes", "--trust", str(trust_path))
    assert code == 4 and "HTTP 500" in err


def test_add_registry_refuses_a_non_http_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], trust_path: Path
) -> None:
    code, _, err = run(
        monkeypatch,
        capsys,
        "trust",
        "add-registry",
        "file:///etc/passwd",
        "--yes",
        "--trust",
        str(trust_path),
    )
    assert code == 2 and "http" in err
