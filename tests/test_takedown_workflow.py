"""Takedown stories through the JSON API and the service: filing, rate limits shared by replicas,
decisions, the append-only audit log, and an upheld takedown reaching the blob store and re-publication."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lorareg.errors import ConflictError, ForbiddenError, GoneError, RateLimitedError
from lorareg.registry.service import open_registry
from lorareg.registry.takedown import RATE_LIMIT_REQUESTS, Takedowns
from lorareg.server.app import create_app
from lorareg.server.config import Settings
from lorareg.signing.revocation import RevocationList, verify_revocation_list
from tests.fixtures.web import WebSite

GOOD = {
    "ref": "acme/pixel-art@1.0.0",
    "reason": "likeness",
    "claimant": "Jo Model",
    "contact": "jo@example.org",
    "details": "It reproduces my face.",
    "good_faith": True,
}


def _file(client: TestClient, **changes: Any) -> Any:
    return client.post("/api/v1/takedowns", json={**GOOD, **changes})


def _bearer(web: WebSite, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {web.registry.create_token(role=role).secret}"}


def _revocations(web: WebSite) -> RevocationList:
    envelope = web.client.get("/api/v1/revocations").content
    now = datetime.now(UTC)
    return verify_revocation_list(
        envelope, [web.registry.key.public_key], held_version=None, now=now, max_age=None
    )


def test_anyone_files_a_takedown_and_gets_a_public_status_without_contact_details(web: WebSite) -> None:
    web.publisher.publish()
    answer = _file(web.client)
    assert answer.status_code == 201
    tracking = answer.json()["id"]
    status = web.client.get(f"/api/v1/takedowns/{tracking}").json()
    assert status["status"] == "pending" and status["ref"] == "acme/pixel-art@1.0.0"
    assert "jo@example.org" not in str(status) and "face" not in str(status)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"reason": "dislike"}, 400),
        ({"contact": "not-an-address"}, 400),
        ({"contact": 'a@b.c"><script>'}, 400),
        ({"details": "   "}, 400),
        ({"details": "x" * 10_001}, 400),
        ({"claimant": ""}, 400),
        ({"good_faith": False}, 400),
        ({"ref": "acme/no-such@1.0.0"}, 404),
    ],
    ids=[
        "unknown-reason",
        "bad-email",
        "email-with-markup",
        "blank-details",
        "huge-details",
        "no-claimant",
        "no-good-faith",
        "unknown-adapter",
    ],
)
def test_bad_takedown_requests_are_refused(web: WebSite, change: dict[str, Any], status: int) -> None:
    web.publisher.publish()
    assert _file(web.client, **change).status_code == status


def test_form_encoded_post_to_the_api_is_refused_as_cross_site(web: WebSite) -> None:
    web.publisher.publish()
    answer = web.client.post("/api/v1/takedowns", data={k: str(v) for k, v in GOOD.items()})
    assert answer.status_code == 403
    assert "application/json" in answer.json()["error"]["message"]


def test_rate_limit_is_shared_by_replicas_through_the_database(web: WebSite, tmp_path: Path) -> None:
    web.publisher.publish()
    second_replica = TestClient(
        create_app(Settings(home=tmp_path / "data"), registry=open_registry(tmp_path / "data"))
    )
    for i in range(RATE_LIMIT_REQUESTS):
        client = web.client if i % 2 else second_replica
        assert _file(client).status_code == 201
    refused = _file(web.client)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert _file(second_replica).status_code == 429


def test_upheld_takedown_revokes_blocks_republication_and_signs_a_new_list(web: WebSite) -> None:
    record = web.publisher.publish()
    before = _revocations(web)
    tracking = _file(web.client).json()["id"]
    reviewer = _bearer(web, "reviewer")
    decided = web.client.post(
        f"/api/v1/takedowns/{tracking}/decision",
        json={"decision": "uphold", "reason": "no consent from the person shown"},
        headers=reviewer,
    )
    assert decided.status_code == 200 and decided.json()["status"] == "upheld"
    blob = web.client.get(f"/api/v1/blobs/sha256/{record.sha256}")
    assert blob.status_code == 451
    assert "no consent from the person shown" in blob.json()["error"]["message"]
    with pytest.raises(GoneError):
        web.registry.upload_blob(record.sha256, iter([b"x"]), principal=web.publisher.principal)
    after = _revocations(web)
    assert after.version > before.version
    assert record.sha256 in {r.sha256 for r in after.revoked}
    assert web.client.get(f"/api/v1/takedowns/{tracking}").json()["public_reason"].startswith("no consent")


def test_uphold_with_all_versions_revokes_every_version(web: WebSite) -> None:
    first = web.publisher.publish(version="1.0.0")
    second = web.publisher.publish(version="1.1.0")
    tracking = _file(web.client).json()["id"]
    web.client.post(
        f"/api/v1/takedowns/{tracking}/decision",
        json={"decision": "uphold", "reason": "character", "all_versions": True},
        headers=_bearer(web, "reviewer"),
    ).raise_for_status()
    for record in (first, second):
        assert web.registry.is_revoked(record.sha256) is not None


def test_decisions_are_final_and_the_audit_log_only_grows(web: WebSite) -> None:
    web.publisher.publish()
    takedowns = Takedowns(web.registry)
    reviewer = web.registry.authenticate(web.registry.create_token(role="reviewer").secret)
    request = takedowns.file(**{**GOOD, "client": "10.0.0.1"})  # type: ignore[arg-type]
    takedowns.decide(request.id, decision="more-info", reason="send a photo", principal=reviewer)
    first_events = takedowns.events(principal=reviewer, request_id=request.id)
    takedowns.decide(request.id, decision="reject", reason="not the same person", principal=reviewer)
    with pytest.raises(ConflictError, match="final"):
        takedowns.decide(request.id, decision="uphold", reason="changed my mind", principal=reviewer)
    events = takedowns.events(principal=reviewer, request_id=request.id)
    assert [e.action for e in reversed(events)] == ["filed", "more-info", "reject"]
    assert events[-len(first_events) :] == first_events  # earlier entries unchanged
    assert web.registry.is_revoked(request.sha256) is None


@pytest.mark.parametrize("role", ["publisher", None], ids=["publisher-token", "no-token"])
def test_review_api_is_closed_to_other_roles(web: WebSite, role: str | None) -> None:
    web.publisher.publish()
    tracking = _file(web.client).json()["id"]
    headers = {"Authorization": f"Bearer {web.publisher.secret}"} if role else {}
    expected = 403 if role else 401
    assert web.client.get("/api/v1/takedowns", headers=headers).status_code == expected
    assert web.client.get("/api/v1/takedowns/audit", headers=headers).status_code == expected
    decided = web.client.post(
        f"/api/v1/takedowns/{tracking}/decision", json={"decision": "uphold", "reason": "x"}, headers=headers
    )
    assert decided.status_code == expected
    assert web.registry.is_revoked(web.publisher.published[0].sha256) is None


def test_service_refuses_a_publisher_deciding(web: WebSite) -> None:
    web.publisher.publish()
    takedowns = Takedowns(web.registry)
    request = takedowns.file(**{**GOOD, "client": "10.0.0.2"})  # type: ignore[arg-type]
    with pytest.raises(ForbiddenError):
        takedowns.decide(request.id, decision="uphold", reason="x", principal=web.publisher.principal)


def test_service_rate_limit_names_the_limit(web: WebSite) -> None:
    web.publisher.publish()
    takedowns = Takedowns(web.registry, rate_limit=1)
    takedowns.file(**{**GOOD, "client": "10.0.0.3"})  # type: ignore[arg-type]
    with pytest.raises(RateLimitedError, match="limit is 1"):
        takedowns.file(**{**GOOD, "client": "10.0.0.3"})  # type: ignore[arg-type]
    takedowns.file(**{**GOOD, "client": "10.0.0.4"})  # type: ignore[arg-type]  # another client is not limited
