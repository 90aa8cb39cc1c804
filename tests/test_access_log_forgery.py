"""Attack: forging access-log lines through the request path, and crashes hidden as status 0.

A decoded path with ``%0a`` used to end the log line and write a second, fake one; an ESC sequence reached
the operator's terminal raw. A request that crashed inside the app was logged with status ``0``. Both run
against a live server, reading the real ``lorareg.access`` records.
"""

from __future__ import annotations

import logging
import sqlite3
import time

import httpx
import pytest

from lorareg.server.log_text import log_safe
from tests.fixtures.server import LiveServer


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The access-log lines, once the server thread wrote them (it logs after the answer is sent)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [r.getMessage() for r in caplog.records if r.name == "lorareg.access"]
        if lines:
            time.sleep(0.1)  # a forged second line would arrive with the first
            return [r.getMessage() for r in caplog.records if r.name == "lorareg.access"]
        time.sleep(0.02)
    return []


def test_newline_in_the_path_cannot_forge_a_second_log_line(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "/api/v1/adapters/acme/x%0a127.0.0.1%20GET%20/admin%20200%0d%1b[2J%e2%80%a8end"
    with caplog.at_level(logging.INFO, logger="lorareg.access"):
        answer = httpx.get(live_server.url + forged, timeout=10)
        lines = _lines(caplog)  # inside: the server thread may log after the answer, at INFO
    assert answer.status_code == 404 and len(lines) == 1
    line = lines[0]
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\u2028" not in line
    assert "\\x0a127.0.0.1 GET /admin 200\\x0d\\x1b[2J\\u2028end 404" in line


def test_a_crashed_request_is_logged_as_500_not_0(
    live_server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    with sqlite3.connect(live_server.data_dir / "lorareg.db") as db:  # the database breaks under the app
        db.execute("DROP TABLE takedown_events")
        db.execute("DROP TABLE takedown_requests")
    with caplog.at_level(logging.INFO, logger="lorareg.access"):
        answer = httpx.get(f"{live_server.url}/api/v1/takedowns/td_{'0' * 32}", timeout=10)
        lines = _lines(caplog)
    assert answer.status_code == 500
    assert answer.json()["error"]["code"] == "internal_error"
    assert [line.split()[2] for line in lines] == ["500"]


def test_log_safe_escapes_every_control_and_keeps_the_rest() -> None:
    assert log_safe("a\\b\x00\x7f\x85\u200e é 😀") == "a\\\\b\\x00\\x7f\\x85\\u200e é 😀"
    assert log_safe("x" * 5000).endswith("…[cut]")
