"""A private catalogue (``LORAREG_READ=signed-in``): nothing is readable without a token or a session, except
what a pipeline or a claimant must always reach (the revocation list, filing and following a takedown).

The central test walks the app's own OpenAPI document and every page route, so a route added later that
forgets the gate fails here rather than leaking the catalogue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from lorareg.errors import AuthError, InputError
from lorareg.server.app import create_app
from lorareg.server.config import Settings, settings_from_env
from lorareg.server.read_access import is_open
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main

_CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def private(live_server_factory) -> tuple[LiveServer, dict[str, str]]:  # type: ignore[no-untyped-def]
    """A signed-in-only server with one published adapter and an alias; values for every path parameter."""
    server: LiveServer = live_server_factory(read="signed-in")
    token = server.add_publisher("acme")
    path, bundle = server.adapter("acme/pixel-art", "1.0.0")
    with server.client(token) as client:
        published = client.publish(path, bundle)
        client.set_alias("acme/pixel-art", "prod", "1.0.0")
    takedown = server.registry  # a request id for the status routes, filed through the service
    from lorareg.registry import Takedowns

    filed = Takedowns(takedown).file(
        ref="acme/pixel-art@1.0.0",
        reason="style",
        claimant="Claire",
        contact="claire@example.org",
        details="my style",
        good_faith=True,
        client="127.0.0.9",
    )
    params = {
        "namespace": "acme",
        "adapter": "pixel-art",
        "version": "1.0.0",
        "alias": "prod",
        "hex": published["sha256"],
        "sha256": published["sha256"],
        "digest": published["sha256"],
        "request_id": filed.id,
        "filename": "style.css",
        "hook_id": "0123456789abcdef",
        "delivery_id": "1",
    }
    return server, params


def _all_routes(routes: Sequence[Any]) -> list[tuple[str, set[str]]]:
    """Every (path, methods) the app serves, through included routers (FastAPI >= 0.120 nests them)."""
    found: list[tuple[str, set[str]]] = []
    for route in routes:
        nested = getattr(route, "effective_candidates", None)
        if callable(nested):
            found += _all_routes(nested())
        elif getattr(route, "methods", None) and getattr(route, "path", None):
            found.append((route.path, set(route.methods)))
    return found


def _fill(path: str, params: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: params[m.group(1)], path)


def _query(path: str) -> dict[str, str]:
    """Query parameters the read routes require (so a refusal is not a 400 for a missing parameter)."""
    if path == "/api/v1/resolve":
        return {"ref": "acme/pixel-art@prod"}
    if path.startswith("/api/v1/log/"):
        return {"index": "0", "tree_size": "1", "first": "1", "second": "1", "start": "0", "end": "1"}
    return {}


def test_private_registry_refuses_every_api_route_without_credentials(private) -> None:  # type: ignore[no-untyped-def]
    server, params = private
    viewer = server.token("viewer")
    auth = {"Authorization": f"Bearer {viewer}"}
    assert httpx.get(f"{server.url}/api/openapi.json").status_code == 401
    document = httpx.get(f"{server.url}/api/openapi.json", headers=auth).json()
    refused, opened = [], []
    for template, operations in document["paths"].items():
        for method in operations:
            url = server.url + _fill(template, params)
            anonymous = httpx.request(method.upper(), url, params=_query(template))
            if is_open(method.upper(), _fill(template, params)):
                opened.append(f"{method.upper()} {template}")
                assert anonymous.status_code != 401, f"{method} {template} must stay open"
                continue
            assert anonymous.status_code == 401, (
                f"{method.upper()} {template} answered {anonymous.status_code}"
            )
            if method != "head":
                assert anonymous.json()["error"]["code"] == AuthError.code
            assert anonymous.headers["www-authenticate"].startswith("Bearer")
            refused.append(f"{method.upper()} {template}")
            if (
                method == "get"
            ):  # a viewer passes the gate; reviewer/admin routes then answer 403/404 themselves
                with_token = httpx.get(url, params=_query(template), headers=auth)
                managed = "takedowns" in template or "webhooks" in template
                expected = {200, 403, 404} if managed else {200}
                assert with_token.status_code in expected, f"GET {template} as a viewer: {with_token.text}"
    assert "GET /api/v1/adapters" in refused and "GET /api/v1/blobs/sha256/{digest}" in refused
    assert "GET /api/v1/log/head" in refused and "GET /api/v1/resolve" in refused
    assert sorted(opened) == sorted(
        [
            "GET /healthz",
            "GET /api/v1/keys",
            "GET /api/v1/revocations",
            "POST /api/v1/takedowns",
            "GET /api/v1/takedowns/{request_id}",
            "POST /api/v1/device/code",  # lorareg login: the CLI has no token yet
            "POST /api/v1/device/token",
            "POST /api/v1/tokens/revoke",  # possession of the token in the body is the authority
        ]
    )


def test_private_registry_redirects_every_page_to_sign_in(private, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, params = private
    app = create_app(Settings(home=tmp_path / "routes"), registry=server.registry)
    pages = [(p, m) for p, m in _all_routes(app.routes) if not p.startswith(("/api/", "/healthz", "/docs"))]
    gets = [p for p, m in pages if "GET" in m]
    assert (
        "/" in gets and "/adapters/{namespace}/{adapter}/{version}" in gets and "/previews/{sha256}" in gets
    )
    for template in gets:
        path = _fill(template, params)
        answer = httpx.get(server.url + path)
        if is_open("GET", path):
            assert answer.status_code not in (303, 401), f"{template} must stay open"
            continue
        assert answer.status_code == 303, f"GET {template} answered {answer.status_code}"
        assert answer.headers["location"].startswith("/sign-in?next=")
    for template, methods in pages:
        for method in sorted(methods - {"GET", "HEAD"}):
            path = _fill(template, params)
            if not is_open(method, path):
                assert httpx.request(method, server.url + path).status_code == 401, f"{method} {template}"


def test_revocations_and_takedown_filing_stay_open(private) -> None:  # type: ignore[no-untyped-def]
    server, _ = private
    assert httpx.get(f"{server.url}/api/v1/revocations").status_code == 200
    filed = httpx.post(
        f"{server.url}/api/v1/takedowns",
        json={
            "ref": "acme/pixel-art@1.0.0",
            "reason": "likeness",
            "claimant": "Dana",
            "contact": "dana@example.org",
            "details": "that is my face",
            "good_faith": True,
        },
    )
    assert filed.status_code == 201
    status_page = httpx.get(f"{server.url}/takedowns/{filed.json()['id']}")
    assert status_page.status_code == 200
    form = httpx.get(f"{server.url}/takedown", params={"ref": "acme/pixel-art@1.0.0"})
    assert form.status_code == 200 and 'action="/takedowns"' in form.text


def test_token_sign_in_gives_a_session_and_returns_to_the_page(private) -> None:  # type: ignore[no-untyped-def]
    server, _ = private
    with httpx.Client(base_url=server.url) as browser:
        first = browser.get("/adapters/acme/pixel-art")
        assert first.status_code == 303
        page = browser.get(first.headers["location"])
        csrf = _CSRF_RE.search(page.text)
        assert csrf is not None and 'value="/adapters/acme/pixel-art"' in page.text
        bad = browser.post("/sign-in", data={"csrf_token": csrf.group(1), "token": "lrg_nope", "next": "/"})
        assert bad.status_code == 401
        signed = browser.post(
            "/sign-in",
            data={"csrf_token": csrf.group(1), "token": server.token("viewer"), "next": "//evil.example/"},
        )
        assert signed.status_code == 303 and signed.headers["location"] == "/"  # no open redirect
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert browser.get("/adapters/acme/pixel-art").status_code == 200
        assert browser.get("/api/v1/adapters").status_code == 200


def test_revoked_token_is_refused_not_treated_as_anonymous(private) -> None:  # type: ignore[no-untyped-def]
    server, _ = private
    issued = server.registry.create_token(role="viewer")
    server.registry.revoke_token(issued.token_id)
    answer = httpx.get(f"{server.url}/api/v1/adapters", headers={"Authorization": f"Bearer {issued.secret}"})
    assert answer.status_code == 401
    assert (
        httpx.get(f"{server.url}/api/v1/adapters", headers={"Authorization": "Basic eDp5"}).status_code == 401
    )


def test_cli_pull_sends_the_configured_token(
    private, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    server, _ = private
    trust, _ = server.trust()
    trust.save(tmp_path / "trust.toml")
    monkeypatch.setenv("LORAREG_REGISTRY", server.url)
    monkeypatch.setenv("LORAREG_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LORAREG_TOKEN", raising=False)
    code, _, err = run_main(
        monkeypatch, capsys, "pull", "acme/pixel-art@prod", "--trust", str(tmp_path / "trust.toml")
    )
    assert code == 2 and "private" in err
    monkeypatch.setenv("LORAREG_TOKEN", server.token("viewer"))
    code, out, err = run_main(
        monkeypatch, capsys, "pull", "acme/pixel-art@prod", "--trust", str(tmp_path / "trust.toml")
    )
    assert code == 0, err
    assert Path(out.strip()).is_file()
    code, out, _ = run_main(monkeypatch, capsys, "search", "--json")
    assert code == 0 and "acme/pixel-art" in out


def test_public_is_the_default_and_a_typo_is_refused() -> None:
    assert settings_from_env({}).read == "public"
    assert settings_from_env({"LORAREG_READ": "signed-in"}).read == "signed-in"
    with pytest.raises(InputError, match="LORAREG_READ"):
        settings_from_env({"LORAREG_READ": "private"})


def test_serve_refuses_an_unknown_read_mode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_main(monkeypatch, capsys, "serve", "--read", "everyone")
    assert code == 2 and "--read must be one of public, signed-in" in err
