"""``lorareg login``'s server side, the OAuth 2.0 device grant (RFC 8628) over real HTTP on a live server,
and the attacks it must refuse: a denied or expired grant, polling too fast, guessing user codes, a replayed
device code, two concurrent polls racing for one token (SQLite and PostgreSQL), an approval without its
CSRF token, a role wider than the approver's, a token outliving its TTL, and hostile form bodies."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from lorareg.registry.db import DeviceGrant
from tests.fixtures.server import LiveServer

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"
CSRF_IN_DEVICE_FORM = re.compile(r'id="device".*?name="csrf_token" value="([^"]+)"', re.S)


def _start(server: LiveServer, **form: str) -> dict[str, Any]:
    answer = httpx.post(f"{server.url}/api/v1/device/code", data={"client_id": "lorareg-cli", **form})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return dict(answer.json())


def _poll(server: LiveServer, device_code: str, **override: str) -> httpx.Response:
    form = {"grant_type": GRANT_TYPE, "device_code": device_code, "client_id": "lorareg-cli", **override}
    return httpx.post(f"{server.url}/api/v1/device/token", data=form)


@contextlib.contextmanager
def _signed_in(server: LiveServer, token: str) -> Iterator[httpx.Client]:
    """A browser-like client with a web session opened by token sign-in (as a person would)."""
    with httpx.Client(base_url=server.url) as browser:
        browser.get("/sign-in")
        form = {"csrf_token": browser.cookies["lorareg_csrf"], "token": token}
        assert browser.post("/sign-in", data=form).status_code == 303
        yield browser


def _decide(browser: httpx.Client, user_code: str, decision: str) -> httpx.Response:
    page = browser.get("/device", params={"user_code": user_code})
    assert page.status_code == 200, page.text
    csrf = CSRF_IN_DEVICE_FORM.search(page.text)
    assert csrf is not None
    return browser.post(
        "/device", data={"csrf_token": csrf.group(1), "user_code": user_code, "decision": decision}
    )


@pytest.fixture
def private(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    """A private registry (LORAREG_READ=signed-in) whose CLI may poll every second."""
    return live_server_factory(read="signed-in", device_interval_s=1)


def test_approved_login_gives_a_viewer_token_once_and_it_reads_the_private_catalogue(
    private: LiveServer,
) -> None:
    grant = _start(private)
    assert re.fullmatch(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}", grant["user_code"])
    assert grant["verification_uri"] == "/device" and grant["expires_in"] == 600 and grant["interval"] == 1
    assert grant["verification_uri_complete"] == f"/device?user_code={grant['user_code']}"
    assert _poll(private, grant["device_code"]).json()["error"] == "authorization_pending"
    with _signed_in(private, private.token("viewer")) as browser:
        entered = grant["user_code"].lower().replace("-", " ")  # case, dash and space do not matter
        assert "Approved" in _decide(browser, entered, "approve").text
    time.sleep(1.05)
    issued = _poll(private, grant["device_code"])
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "viewer" and body["expires_in"] == 12 * 3600
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert httpx.get(f"{private.url}/api/v1/adapters", headers=bearer).status_code == 200
    time.sleep(1.05)
    replay = _poll(private, grant["device_code"])  # the token is handed out exactly once
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_codes_are_stored_only_as_digests(private: LiveServer) -> None:
    grant = _start(private)
    with private.registry.db.read() as session:
        (row,) = session.exec(select(DeviceGrant)).all()
    stored = " ".join(str(v) for v in row.model_dump().values())
    assert grant["device_code"] not in stored and grant["user_code"].replace("-", "") not in stored


def test_denied_login_answers_access_denied(private: LiveServer) -> None:
    grant = _start(private)
    with _signed_in(private, private.token("viewer")) as browser:
        assert "Denied" in _decide(browser, grant["user_code"], "deny").text
    answer = _poll(private, grant["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] == "access_denied"


def test_expired_grant_answers_expired_token(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(device_code_ttl_s=1, device_interval_s=0)
    grant = _start(server)
    time.sleep(1.1)
    answer = _poll(server, grant["device_code"])
    assert answer.status_code == 400 and answer.json()["error"] == "expired_token"
    with _signed_in(server, server.token("viewer")) as browser:  # nor can it be approved any more
        assert browser.get("/device", params={"user_code": grant["user_code"]}).status_code == 404


def test_polling_faster_than_the_interval_gets_slow_down_and_a_longer_interval(private: LiveServer) -> None:
    grant = _start(private)
    assert _poll(private, grant["device_code"]).json()["error"] == "authorization_pending"
    fast = _poll(private, grant["device_code"])
    assert fast.status_code == 400 and fast.json()["error"] == "slow_down"
    assert "6 s" in fast.json()["error_description"]  # 1 s + 5 s (RFC 8628 §3.5)
    time.sleep(1.1)  # the old interval is no longer enough
    assert _poll(private, grant["device_code"]).json()["error"] == "slow_down"


def test_wrong_user_codes_lock_the_account_out_even_for_the_right_code(private: LiveServer) -> None:
    grant = _start(private)
    with _signed_in(private, private.token("viewer")) as browser:
        for _ in range(5):
            wrong = browser.get("/device", params={"user_code": "BBBB-BBBB"})
            assert wrong.status_code == 404 and "no sign-in is waiting" in wrong.text
        locked = browser.get("/device", params={"user_code": grant["user_code"]})
        assert locked.status_code == 429 and "wrong codes" in locked.text
    with _signed_in(private, private.token("viewer")) as other:  # another account is not locked out
        assert other.get("/device", params={"user_code": grant["user_code"]}).status_code == 200


def test_approval_without_the_csrf_token_or_from_another_site_is_refused(private: LiveServer) -> None:
    grant = _start(private)
    with _signed_in(private, private.token("viewer")) as browser:
        browser.get("/device", params={"user_code": grant["user_code"]})
        bare = browser.post("/device", data={"user_code": grant["user_code"], "decision": "approve"})
        assert bare.status_code == 403 and "CSRF" in bare.text
        anonymous_token = browser.cookies.get("lorareg_csrf")  # the double-submit cookie is not enough
        forged = browser.post(
            "/device",
            data={
                "csrf_token": anonymous_token or "x",
                "user_code": grant["user_code"],
                "decision": "approve",
            },
        )
        assert forged.status_code == 403
        csrf = CSRF_IN_DEVICE_FORM.search(
            browser.get("/device", params={"user_code": grant["user_code"]}).text
        )
        assert csrf is not None
        cross = browser.post(
            "/device",
            data={"csrf_token": csrf.group(1), "user_code": grant["user_code"], "decision": "approve"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
    assert _poll(private, grant["device_code"]).json()["error"] == "authorization_pending"


def test_the_device_page_needs_a_session_and_comes_back_after_sign_in(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory()  # public catalogue: the page itself still needs a session
    answer = httpx.get(f"{server.url}/device", params={"user_code": "BCDF-GHJK"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=%2Fdevice%3Fuser_code%3DBCDF-GHJK"


def test_a_role_wider_than_the_approvers_is_refused(private: LiveServer) -> None:
    grant = _start(private, scope="admin")
    with _signed_in(private, private.token("viewer")) as browser:
        answer = _decide(browser, grant["user_code"], "approve")
        assert answer.status_code == 403 and "wider than yours" in answer.text
    assert _poll(private, grant["device_code"]).json()["error"] == "authorization_pending"


def test_a_narrower_role_is_granted_and_publishers_keep_their_namespace(private: LiveServer) -> None:
    publish = private.add_publisher("vfx")
    narrow, same = _start(private, scope="viewer"), _start(private)
    with _signed_in(private, publish) as browser:
        for grant in (narrow, same):
            _decide(browser, grant["user_code"], "approve")
    assert _poll(private, narrow["device_code"]).json()["scope"] == "viewer"
    assert _poll(private, same["device_code"]).json()["scope"] == "publisher"
    tokens = {t.role: t for t in private.registry.list_tokens() if t.expires is not None}
    assert tokens["publisher"].namespace == "vfx" and tokens["viewer"].namespace is None


def test_the_login_token_stops_working_after_its_ttl(live_server_factory: Callable[..., LiveServer]) -> None:
    server = live_server_factory(read="signed-in", login_token_ttl_s=2, device_interval_s=0)
    grant = _start(server)
    with _signed_in(server, server.token("viewer")) as browser:
        _decide(browser, grant["user_code"], "approve")
    body = _poll(server, grant["device_code"]).json()
    assert body["expires_in"] == 2
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert httpx.get(f"{server.url}/api/v1/adapters", headers=bearer).status_code == 200
    time.sleep(2.2)
    assert httpx.get(f"{server.url}/api/v1/adapters", headers=bearer).status_code == 401


def test_revocation_by_possession_ends_the_token(private: LiveServer) -> None:
    token = private.token("viewer")
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{private.url}/api/v1/adapters", headers=bearer).status_code == 200
    answer = httpx.post(f"{private.url}/api/v1/tokens/revoke", data={"token": token})
    assert answer.status_code == 200 and answer.json() == {}
    assert httpx.get(f"{private.url}/api/v1/adapters", headers=bearer).status_code == 401
    unknown = httpx.post(
        f"{private.url}/api/v1/tokens/revoke", data={"token": "lrg_000000000000_" + "x" * 40}
    )
    assert unknown.status_code == 200  # RFC 7009 §2.2: nothing learned about unknown tokens


def test_verification_uri_comes_from_the_public_url_never_from_host(
    live_server_factory: Callable[..., LiveServer],
) -> None:
    server = live_server_factory(public_url="https://lorareg.studio.example")
    answer = httpx.post(
        f"{server.url}/api/v1/device/code",
        data={"client_id": "lorareg-cli"},
        headers={"Host": "evil.example"},
    ).json()
    assert answer["verification_uri"] == "https://lorareg.studio.example/device"
    assert answer["verification_uri_complete"].startswith("https://lorareg.studio.example/device?user_code=")


def test_pending_grants_are_bounded(private: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from lorareg.registry import device_grants

    monkeypatch.setattr(device_grants, "MAX_PENDING_GRANTS", 3)
    for _ in range(3):
        _start(private)
    refused = httpx.post(f"{private.url}/api/v1/device/code", data={"client_id": "lorareg-cli"})
    assert refused.status_code == 429 and refused.json()["error"] == "slow_down"
    assert "too many sign-ins are waiting" in refused.json()["error_description"]


def test_one_address_cannot_start_grants_without_end(
    private: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lorareg.registry import device_grants

    monkeypatch.setattr(device_grants, "MAX_CODES_PER_CLIENT", 2)
    for _ in range(2):
        _start(private)
    refused = httpx.post(f"{private.url}/api/v1/device/code", data={"client_id": "lorareg-cli"})
    assert (
        refused.status_code == 429 and "this address started too many" in refused.json()["error_description"]
    )


@pytest.mark.parametrize(
    ("path", "content", "content_type", "error"),
    [
        ("token", b"device_code=" + b"x" * 5000, "application/x-www-form-urlencoded", "invalid_request"),
        ("token", b"grant_type=password&device_code=x&client_id=lorareg-cli", None, "unsupported_grant_type"),
        ("token", b"device_code=x&client_id=lorareg-cli", None, "invalid_request"),
        ("token", b"", None, "invalid_request"),
        ("token", b'{"device_code": "x"}', "application/json", "invalid_request"),
        ("token", b"client_id=lorareg-cli&client_id=lorareg-cli", None, "invalid_request"),
        ("token", b"grant_type=x%00&device_code=x&client_id=lorareg-cli", None, "invalid_request"),
        ("token", b"grant_type=\xff\xfe&device_code=x&client_id=lorareg-cli", None, "invalid_request"),
        (
            "token",
            f"grant_type={GRANT_TYPE}&device_code=nope&client_id=lorareg-cli".encode(),
            None,
            "invalid_grant",
        ),  # fmt: skip
        ("code", b"client_id=someone-else", None, "invalid_client"),
        ("code", b"client_id=lorareg-cli&scope=emperor", None, "invalid_scope"),
        ("code", b"client_id=lorareg-cli&extra=1", None, "invalid_request"),
        ("code", b"a=" + b"%" * 3000, None, "invalid_request"),
    ],
    ids=[
        "oversized",
        "wrong-grant-type",
        "missing-grant-type",
        "empty",
        "json-body",
        "repeated-field",
        "nul",
        "not-utf8",
        "unknown-device-code",
        "unknown-client",
        "unknown-scope",
        "unknown-field",
        "bad-escapes",
    ],  # fmt: skip
)
def test_hostile_form_bodies_get_400_json_never_500(
    private: LiveServer, path: str, content: bytes, content_type: str | None, error: str
) -> None:
    headers = {"Content-Type": content_type or "application/x-www-form-urlencoded"}
    answer = httpx.post(f"{private.url}/api/v1/device/{path}", content=content, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == error and answer.json()["error_description"]


def test_concurrent_polls_get_the_token_exactly_once(
    live_server_factory: Callable[..., LiveServer], database_url: str
) -> None:
    """Eight polls in flight at once after approval: one token, seven ``invalid_grant`` (no slow_down at
    interval 0, so only the transaction stands between them), on SQLite and on PostgreSQL."""
    server = live_server_factory(database_url=database_url, device_interval_s=0)
    grant = _start(server)
    with _signed_in(server, server.token("viewer")) as browser:
        _decide(browser, grant["user_code"], "approve")
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(8)

    def poll() -> None:
        barrier.wait()
        answers.append(_poll(server, grant["device_code"]))

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] + [400] * 7, [a.text for a in answers]
    assert {a.json()["error"] for a in answers if a.status_code == 400} == {"invalid_grant"}
    minted = [t for t in server.registry.list_tokens() if t.expires is not None]
    assert len(minted) == 1


@pytest.mark.parametrize(
    ("raw", "seconds"), [("", 12 * 3600), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("90", 90)]
)
def test_login_token_ttl_setting(raw: str, seconds: int) -> None:
    from lorareg.server.config import settings_from_env

    assert settings_from_env({"LORAREG_LOGIN_TOKEN_TTL": raw}).login_token_ttl_s == seconds


@pytest.mark.parametrize("raw", ["forever", "0", "-5m", "12 h", "1y"])
def test_a_bad_login_token_ttl_is_refused_at_start(raw: str) -> None:
    from lorareg.errors import InputError
    from lorareg.server.config import settings_from_env

    with pytest.raises(InputError, match="LORAREG_LOGIN_TOKEN_TTL"):
        settings_from_env({"LORAREG_LOGIN_TOKEN_TTL": raw})
