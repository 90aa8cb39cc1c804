"""Attack: two reviewers decide one takedown at the same moment (reject and uphold in parallel).

Real concurrent HTTP requests against a live server, on SQLite and PostgreSQL. Whatever the interleaving,
exactly one decision wins, the others get 409, and the outcome, the revocation, the transparency-log
``revoke`` leaf and the audit log all tell the same story.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx

from lorareg.registry.takedown import Takedowns
from tests.fixtures.registry import make_publisher
from tests.fixtures.server import LiveServer

DECIDERS = 6  # three reject and three uphold, released together
ROUNDS = 3


def _file(server: LiveServer, ref: str) -> str:
    answer = httpx.post(
        f"{server.url}/api/v1/takedowns",
        json={
            "ref": ref,
            "reason": "likeness",
            "claimant": "Jo Model",
            "contact": "jo@example.org",
            "details": "It reproduces my face.",
            "good_faith": True,
        },
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _decide_together(server: LiveServer, tracking: str, tokens: list[str]) -> list[tuple[str, int]]:
    """Send every decision at once (a barrier releases the threads); return (decision, status) pairs."""
    barrier = threading.Barrier(len(tokens))
    results: list[tuple[str, int]] = []
    lock = threading.Lock()

    def decide(index: int, token: str) -> None:
        decision = "uphold" if index % 2 else "reject"
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            answer = client.post(
                f"{server.url}/api/v1/takedowns/{tracking}/decision",
                json={"decision": decision, "reason": f"reviewer {index} says {decision}"},
                headers={"authorization": f"Bearer {token}"},
            )
        with lock:
            results.append((decision, answer.status_code))

    threads = [threading.Thread(target=decide, args=(i, t)) for i, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _revoke_leaves(server: LiveServer, sha256: str) -> list[dict[str, Any]]:
    leaves = server.registry.log_entries(0, 1000)
    bodies = [json.loads(e.body) for e in leaves if e.kind == "revoke"]
    return [b for b in bodies if b["sha256"] == sha256]


def test_racing_reject_and_uphold_agree_on_one_outcome(
    live_server_factory: Callable[..., LiveServer], database_url: str
) -> None:
    server = live_server_factory(database_url=database_url)
    publisher = make_publisher(server.registry, "acme")
    reviewers = [server.token("reviewer") for _ in range(DECIDERS)]
    takedowns = Takedowns(server.registry)
    reviewer = server.registry.authenticate(reviewers[0])
    outcomes = set()
    for round_ in range(ROUNDS):
        record = publisher.publish("pixel-art", f"1.0.{round_}")
        tracking = _file(server, f"acme/pixel-art@1.0.{round_}")
        results = _decide_together(server, tracking, reviewers)

        winners = [decision for decision, status in results if status == 200]
        assert len(results) == DECIDERS and len(winners) == 1, results
        assert sorted(status for _, status in results) == [200] + [409] * (DECIDERS - 1), results
        decided = takedowns.get(tracking)
        audit = takedowns.events(principal=reviewer, request_id=tracking)
        decisions = [e.action for e in audit if e.action != "filed"]
        revoked = server.registry.is_revoked(record.sha256)
        leaves = _revoke_leaves(server, record.sha256)
        if winners == ["uphold"]:
            assert decided.status == "upheld" and decisions == ["uphold"]
            assert revoked is not None and len(leaves) == 1
        else:
            assert decided.status == "rejected" and decisions == ["reject"]
            assert revoked is None and leaves == []
        outcomes.add(decided.status)
    assert outcomes <= {"upheld", "rejected"}
