"""Every route that takes JSON reads it the same strict way (``server/json_body.py``), over real HTTP.

The attack class: a body that a careless reader lets through — a cross-site form post (no CORS preflight,
so no CSRF token is needed if the server accepts it), a body far larger than the route needs, malformed or
mistyped JSON (a traceback or a 500), or a NUL hidden in a string (truncated later by C code and logs).
Each of the three JSON routes (file a takedown, move an alias, register a webhook) answers 403, 413 and a
one-line 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.server import LiveServer

Route = tuple[str, str, dict[str, Any], dict[str, str]]


def _routes(live_server: LiveServer) -> dict[str, Route]:
    publisher = {"Authorization": f"Bearer {live_server.add_publisher('acme')}"}
    admin = {"Authorization": f"Bearer {live_server.token('admin')}"}
    url = live_server.url
    return {
        "takedown": (
            "POST",
            f"{url}/api/v1/takedowns",
            {
                "ref": "acme/ink@1.0.0",
                "reason": "likeness",
                "claimant": "Ada",
                "contact": "a@example.com",
                "details": "x",
            },
            {},
        ),
        "alias": ("PUT", f"{url}/api/v1/adapters/acme/ink/aliases/prod", {"version": "1.0.0"}, publisher),
        "webhook": (
            "POST",
            f"{url}/api/v1/webhooks",
            {"url": "http://127.0.0.1:9/hook", "events": ["version.published"]},
            admin,
        ),
    }


Change = Callable[[dict[str, Any]], tuple[bytes, str]]
CASES: dict[str, tuple[Change, int, str]] = {
    "form-post": (
        lambda body: (b"version=1.0.0", "application/x-www-form-urlencoded"),
        403,
        "application/json",
    ),
    "text-plain": (lambda body: (b'{"version": "1.0.0"}', "text/plain"), 403, "application/json"),
    "oversized": (lambda body: (b'{"x": "' + b"a" * 100_000 + b'"}', "application/json"), 413, ""),
    "not-json": (lambda body: (b"{not json", "application/json"), 400, "invalid request body"),
    "wrong-type": (lambda body: (b"[1, 2, 3]", "application/json"), 400, "invalid request body"),
    "nul-in-string": (
        lambda body: (httpx.Request("POST", "/", json=_with_nul(body)).content, "application/json"),
        400,
        "NUL",
    ),
}


def _with_nul(body: dict[str, Any]) -> dict[str, Any]:
    key = next(k for k, v in body.items() if isinstance(v, str))
    return {**body, key: body[key] + "\x00hidden"}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("route", ["takedown", "alias", "webhook"])
def test_json_routes_refuse_hostile_bodies_in_one_line(
    live_server: LiveServer, route: str, case: str
) -> None:
    method, url, good, headers = _routes(live_server)[route]
    change, status, message = CASES[case]
    content, content_type = change(good)
    answer = httpx.request(method, url, content=content, headers={**headers, "Content-Type": content_type})
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert message in error["message"] and "\n" not in error["message"]
    assert "Traceback" not in answer.text
