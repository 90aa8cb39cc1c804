"""``lorareg login`` end to end: the CLI as a subprocess, a private registry with single sign-on against a
real OpenID Connect provider (``oidc-provider-mock``), and Chromium signing in and approving the code; then
``search`` and ``pull`` with the stored sign-in and no ``--token``, and ``logout``. Plus the CLI's refusals:
a denied or expired login (exit 1), Ctrl-C (exit 130, no traceback), a credentials file others can read,
a malformed one, and an expired stored sign-in."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from lorareg.client import credentials
from lorareg.errors import InputError
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main
from tests.test_device_login import _decide, _signed_in
from tests.test_sso import CLIENT_ID, ROLES, _user, idp  # noqa: F401  (idp is a fixture used here)
from tests.test_web_browser import CHROMIUM, CHROMIUM_ARGS

CODE_LINE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")
COMPLETE_LINE = re.compile(r"\(or open (\S+)\)")


@pytest.fixture
def studio(live_server_factory: Callable[..., LiveServer], idp: str) -> LiveServer:  # noqa: F811
    """A private registry with SSO, one published adapter, and a CLI allowed to poll every second."""
    server = live_server_factory(
        read="signed-in",
        oidc_issuer=idp,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret="s3cret",
        oidc_roles=ROLES,
        device_interval_s=1,
    )
    token = server.add_publisher("vfx")
    path, bundle = server.adapter("vfx/ink-lines")
    with server.client(token) as client:
        client.publish(path, bundle)
    return server


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LORAREG_TOKEN"}
    env |= {"LORAREG_CONFIG": str(tmp_path / "config"), "LORAREG_CACHE": str(tmp_path / "cache")}
    return env


@pytest.fixture
def start_login(cli_env: dict[str, str]) -> Iterator[Callable[..., tuple[subprocess.Popen[str], str, str]]]:
    """Run ``lorareg login --no-browser`` as a subprocess; the process, its code and its page."""
    started: list[subprocess.Popen[str]] = []

    def start(url: str, *args: str) -> tuple[subprocess.Popen[str], str, str]:
        command = [sys.executable, "-m", "lorareg", "login", "--no-browser", "--registry", url, *args]
        proc = subprocess.Popen(
            command, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(proc)
        assert proc.stderr is not None
        first, second = proc.stderr.readline(), proc.stderr.readline()
        code, page = CODE_LINE.search(first), COMPLETE_LINE.search(second)
        assert code is not None and page is not None, first + second
        return proc, code.group(1), page.group(1)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _finish(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for the CLI; its stdout and the rest of its stderr (read through the buffered pipes, which
    already hold what the fixture's ``readline`` read ahead)."""
    proc.wait(timeout=30)
    assert proc.stdout is not None and proc.stderr is not None
    return proc.stdout.read(), proc.stderr.read()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "lorareg", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_login_through_the_identity_provider_then_search_and_pull_without_a_token(
    studio: LiveServer,
    idp: str,  # noqa: F811
    cli_env: dict[str, str],
    start_login: Callable[..., tuple[subprocess.Popen[str], str, str]],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    _user(idp, "erin", ["studio"])
    proc, user_code, page_url = start_login(studio.url, "--json")
    assert page_url == f"{studio.url}/device?user_code={user_code}"
    shots = Path(request.config.getoption("--screenshots-dir") or tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 760})
            page.goto(page_url)
            page.wait_for_url("**/sign-in?next=*")
            page.click("text=Sign in with your organisation")
            page.fill("input[name=sub]", "erin")
            page.click("button:text('Authorize')")
            page.wait_for_url(f"{studio.url}/device?user_code={user_code}")
            assert page.inner_text("#device-user-code") == user_code
            assert "sso:erin (viewer)" in page.inner_text("#device")
            shots.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shots / "device.png"), full_page=True)
            page.click("#device-approve")
            assert "Approved" in page.inner_text("#device-outcome")
        finally:
            browser.close()
    out, err = _finish(proc)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["registry"] == studio.url and summary["roles"] == ["viewer"]
    assert "lrg_" not in out and "lrg_" not in err  # the token is never printed

    stored = Path(cli_env["LORAREG_CONFIG"]) / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    token = json.loads(stored.read_text())["registries"][studio.url]["token"]
    assert any(t.user == "sso:erin" and t.role == "viewer" for t in studio.registry.list_tokens())

    search = _cli(cli_env, "search", "--registry", studio.url, "--json")
    assert search.returncode == 0, search.stderr
    assert [i["name"] for i in json.loads(search.stdout)["items"]] == ["vfx/ink-lines"]
    trust, _ = studio.trust()
    trust.save(tmp_path / "trust.toml")
    pull = _cli(
        cli_env,
        "pull",
        "vfx/ink-lines@1.0.0",
        "--registry",
        studio.url,
        "--trust",
        str(tmp_path / "trust.toml"),
    )
    assert pull.returncode == 0, pull.stderr
    assert Path(pull.stdout.strip()).is_file()

    logout = _cli(cli_env, "logout", "--registry", studio.url)
    assert logout.returncode == 0 and "revoked" in logout.stderr
    assert (
        httpx.get(f"{studio.url}/api/v1/adapters", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    after = _cli(cli_env, "search", "--registry", studio.url)
    assert after.returncode == 2 and after.stderr.startswith("error: this registry is private")


def test_denied_login_exits_1(
    live_server_factory: Callable[..., LiveServer],
    start_login: Callable[..., tuple[subprocess.Popen[str], str, str]],
    cli_env: dict[str, str],
) -> None:
    server = live_server_factory(read="signed-in", device_interval_s=1)
    proc, user_code, _ = start_login(server.url)
    with _signed_in(server, server.token("viewer")) as browser:
        _decide(browser, user_code, "deny")
    _, err = _finish(proc)
    assert proc.returncode == 1 and err.splitlines()[-1] == "error: the sign-in was denied in the browser"
    assert not (Path(cli_env["LORAREG_CONFIG"]) / "credentials.json").exists()


def test_expired_login_exits_1(
    live_server_factory: Callable[..., LiveServer],
    start_login: Callable[..., tuple[subprocess.Popen[str], str, str]],
) -> None:
    server = live_server_factory(device_code_ttl_s=2, device_interval_s=1)
    proc, _, _ = start_login(server.url)
    _, err = _finish(proc)
    assert proc.returncode == 1 and "expired" in err.splitlines()[-1]


def test_ctrl_c_while_waiting_exits_130_without_a_traceback(
    live_server: LiveServer, start_login: Callable[..., tuple[subprocess.Popen[str], str, str]]
) -> None:
    proc, _, _ = start_login(live_server.url)
    proc.send_signal(signal.SIGINT)
    _, err = _finish(proc)
    assert proc.returncode == 130 and err.splitlines()[-1] == "error: interrupted; no sign-in was stored", (
        repr(err)
    )
    assert "Traceback" not in err


# -- the credentials file -------------------------------------------------------------------------------
def _login(token: str = "lrg_0123456789ab_" + "a" * 43, *, hours: float = 1) -> credentials.StoredLogin:
    return credentials.StoredLogin(token, datetime.now(UTC) + timedelta(hours=hours), "viewer")


def test_stored_sign_in_is_used_when_no_token_is_given_and_loses_to_explicit_ones(tmp_path: Path) -> None:
    env = {"LORAREG_CONFIG": str(tmp_path)}
    stored = _login()
    credentials.store("https://r.example/", stored, tmp_path / "credentials.json")
    assert credentials.token_for("https://r.example", env=env) == stored.token
    assert credentials.token_for("https://other.example", env=env) is None
    assert credentials.token_for("https://r.example", env=env | {"LORAREG_TOKEN": "lrg_env"}) == "lrg_env"
    assert (
        credentials.token_for("https://r.example", "lrg_flag", env=env | {"LORAREG_TOKEN": "x"}) == "lrg_flag"
    )
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


def test_expired_stored_sign_in_says_run_lorareg_login(
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    credentials.store(live_server.url, _login(hours=-1), tmp_path / "credentials.json")
    monkeypatch.setenv("LORAREG_CONFIG", str(tmp_path))
    monkeypatch.delenv("LORAREG_TOKEN", raising=False)
    code, _, err = run_main(monkeypatch, capsys, "search", "--registry", live_server.url)
    assert code == 2 and err == f"error: your sign-in to {live_server.url} expired; run lorareg login\n"


def test_credentials_file_others_can_read_is_refused_with_one_line(
    live_server: LiveServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = credentials.store(live_server.url, _login(), tmp_path / "credentials.json")
    path.chmod(0o644)
    monkeypatch.setenv("LORAREG_CONFIG", str(tmp_path))
    monkeypatch.delenv("LORAREG_TOKEN", raising=False)
    code, _, err = run_main(monkeypatch, capsys, "search", "--registry", live_server.url)
    assert code == 2 and err.count("\n") == 1
    assert f"credentials file {path} is readable by others (mode 0644); run: chmod 600 {path}" in err


def test_the_loaders_registry_path_uses_the_stored_sign_in(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lorareg.loader.source import _client

    server = live_server_factory(read="signed-in")
    credentials.store(server.url, _login(server.token("viewer")), tmp_path / "credentials.json")
    monkeypatch.setenv("LORAREG_CONFIG", str(tmp_path))
    monkeypatch.delenv("LORAREG_TOKEN", raising=False)
    with _client(server.url) as client:
        assert client.search()["items"] == []


_GOOD = {"token": "lrg_0123456789ab_" + "a" * 43, "expires_at": "2030-01-01T00:00:00+00:00", "role": "viewer"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not json", "not valid JSON"),
        (b'{"version": 1, "registries": {}, "x": 1}', "expected"),
        (b'{"version": 2, "registries": {}}', "expected"),
        (json.dumps({"version": 1, "registries": []}).encode(), "registries must be an object"),
        (json.dumps({"version": 1, "registries": {"ftp://x": _GOOD}}).encode(), "not a registry URL"),
        (json.dumps({"version": 1, "registries": {"http://x": {**_GOOD, "extra": 1}}}).encode(), "exactly"),
        (
            json.dumps({"version": 1, "registries": {"http://x": {**_GOOD, "token": "hunter2"}}}).encode(),
            "not an lrg_ token",
        ),  # fmt: skip
        (
            json.dumps(
                {"version": 1, "registries": {"http://x": {**_GOOD, "expires_at": "tomorrow"}}}
            ).encode(),
            "ISO 8601",
        ),  # fmt: skip
        (
            json.dumps({"version": 1, "registries": {"http://x": {**_GOOD, "role": "emperor"}}}).encode(),
            "role",
        ),
        (b'{"version": 1, "version": 1, "registries": {}}', "not valid JSON"),
        (b" " * (credentials.MAX_FILE_BYTES + 1), "over"),
    ],
    ids=[
        "not-json",
        "extra-key",
        "other-version",
        "registries-list",
        "ftp-url",
        "extra-entry-key",
        "bad-token",
        "bad-time",
        "bad-role",
        "duplicate-key",
        "oversized",
    ],  # fmt: skip
)
def test_malformed_credentials_file_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "credentials.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(InputError, match=message) as caught:
        credentials.load(path)
    assert "\n" not in str(caught.value)


def test_a_symlinked_credentials_file_is_not_followed(tmp_path: Path) -> None:
    target = credentials.store("http://x", _login(), tmp_path / "real.json")
    (tmp_path / "credentials.json").symlink_to(target)
    with pytest.raises(InputError, match="cannot read"):
        credentials.load(tmp_path / "credentials.json")
