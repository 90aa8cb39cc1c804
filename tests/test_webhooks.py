"""Webhooks: signed deliveries to a real receiver over loopback, retries with backoff, the delivery log,
redelivery, SSRF refusals, replicas that never send one delivery twice, and a ``kill -9`` between the
enqueue and the send that loses nothing."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from lorareg.errors import ForbiddenError, InputError, VerificationError
from lorareg.registry import Aliases, Registry, WebhookAllow, Webhooks
from lorareg.registry.service import open_registry
from lorareg.registry.webhook_urls import check_webhook_url
from lorareg.signing.webhook_signature import sign_webhook, verify_webhook
from tests.fixtures.deployments import Deployment, ServeProcess
from tests.fixtures.registry import Publisher, build_adapter, make_publisher
from tests.fixtures.server import LiveServer
from tests.support.cli_runner import run_main

LOOPBACK = WebhookAllow.parse("loopback")
FAST = {"backoff_s": 0.2, "lease_s": 30.0, "timeout_s": 5.0}


@dataclass
class Receiver:
    """A webhook receiver on loopback: records every request; answers the queued statuses, then 200."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[dict]:  # type: ignore[type-arg]
        with self.lock:
            return [json.loads(body) for _, body in self.received]

    def wait_for(self, count: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            got = box[0]
            with got.lock:
                got.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = got.statuses.pop(0) if got.statuses else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield box[0]
    server.shutdown()
    server.server_close()


def _admin(registry: Registry):  # type: ignore[no-untyped-def]
    return registry.authenticate(registry.create_token(role="admin").secret)


# -- URL checks -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.org/hook", "http or https"),
        ("https://user:pw@example.org/hook", "credentials"),
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://[::1]:9/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://192.168.0.10/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http:///hook", "no host"),
        ("http://localhost:9/hook", "loopback"),
    ],
    ids=[
        "ftp",
        "credentials",
        "loopback-v4",
        "loopback-v6",
        "rfc1918-10",
        "rfc1918-192",
        "metadata",
        "zero",
        "no-host",
        "localhost",
    ],
)
def test_ssrf_targets_are_refused_by_default(url: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_webhook_url(url, allow=WebhookAllow())


def test_allow_list_opens_exactly_what_it_names() -> None:
    assert check_webhook_url("http://127.0.0.1:9/x", allow=LOOPBACK)
    with pytest.raises(InputError, match="private"):
        check_webhook_url("http://10.1.2.3/x", allow=LOOPBACK)
    assert check_webhook_url("http://10.1.2.3/x", allow=WebhookAllow.parse("10.1.0.0/16"))
    with pytest.raises(InputError, match="LORAREG_WEBHOOK_ALLOW"):
        WebhookAllow.parse("everything")


# -- the signature --------------------------------------------------------------------------------------
def test_signature_refuses_tampered_body_and_replayed_timestamp() -> None:
    body, stamp = b'{"type":"version.published"}', 1_700_000_000
    signature = sign_webhook("s3cret", stamp, body)
    verify_webhook("s3cret", signature=signature, timestamp=str(stamp), body=body, now=stamp + 10)
    with pytest.raises(VerificationError, match="bad signature"):
        verify_webhook("s3cret", signature=signature, timestamp=str(stamp), body=body + b" ", now=stamp)
    with pytest.raises(VerificationError, match="replay"):
        verify_webhook("s3cret", signature=signature, timestamp=str(stamp), body=body, now=stamp + 3600)
    with pytest.raises(VerificationError, match="bad signature"):
        verify_webhook("other", signature=signature, timestamp=str(stamp), body=body, now=stamp)


# -- the service, on SQLite and PostgreSQL ----------------------------------------------------------------
def test_publish_is_delivered_signed_and_logged(
    registry: Registry, publisher: Publisher, receiver: Receiver
) -> None:
    hooks = Webhooks(registry, allow=LOOPBACK)
    hook, secret = hooks.add(receiver.url, ["version.published"], namespace=None, principal=_admin(registry))
    publisher.publish("pixel-art", "1.0.0")
    assert hooks.deliver_due(worker="w1", **FAST) == 1
    ((headers, body),) = receiver.received
    verify_webhook(
        secret,
        signature=headers["x-lorareg-signature"],
        timestamp=headers["x-lorareg-timestamp"],
        body=body,
        now=time.time(),
    )
    event = json.loads(body)
    assert event["type"] == "version.published" and event["data"]["name"] == "acme/pixel-art"
    assert headers["x-lorareg-event"] == "version.published"
    (delivery,) = hooks.deliveries(hook.id, principal=_admin(registry))
    assert delivery.status == "delivered" and [a["status_code"] for a in delivery.log] == [200]
    assert hooks.deliver_due(worker="w1", **FAST) == 0  # nothing is sent twice


def test_failed_delivery_is_retried_with_backoff(
    registry: Registry, publisher: Publisher, receiver: Receiver
) -> None:
    hooks = Webhooks(registry, allow=LOOPBACK)
    hook, _ = hooks.add(receiver.url, ["version.published"], namespace=None, principal=_admin(registry))
    receiver.statuses = [500, 503]
    publisher.publish("pixel-art", "1.0.0")
    assert hooks.deliver_due(worker="w1", **FAST) == 1
    assert hooks.deliver_due(worker="w1", **FAST) == 0  # not due yet: backoff
    time.sleep(0.25)
    assert hooks.deliver_due(worker="w1", **FAST) == 1
    time.sleep(0.25)
    assert hooks.deliver_due(worker="w1", **FAST) == 0  # second delay is twice the first
    time.sleep(0.25)
    assert hooks.deliver_due(worker="w1", **FAST) == 1
    (delivery,) = hooks.deliveries(hook.id, principal=_admin(registry))
    assert [a["status_code"] for a in delivery.log] == [500, 503, 200]
    assert delivery.status == "delivered" and delivery.attempts == 3
    assert len({json.loads(b)["id"] for _, b in receiver.received}) == 1


def test_redeliver_sends_the_same_event_again(
    registry: Registry, publisher: Publisher, receiver: Receiver
) -> None:
    hooks = Webhooks(registry, allow=LOOPBACK)
    admin = _admin(registry)
    hook, _ = hooks.add(receiver.url, ["version.yanked"], namespace=None, principal=admin)
    publisher.publish("pixel-art", "1.0.0")
    registry.yank("acme/pixel-art", "1.0.0", principal=publisher.principal)
    hooks.deliver_due(worker="w1", **FAST)
    (first,) = hooks.deliveries(hook.id, principal=admin)
    again = hooks.redeliver(hook.id, first.id, principal=admin)
    assert again.id != first.id and again.event_id == first.event_id and again.status == "pending"
    assert hooks.deliver_due(worker="w1", **FAST) == 1
    assert [e["type"] for e in receiver.bodies()] == ["version.yanked", "version.yanked"]


def test_publisher_hooks_see_only_their_namespace(
    registry: Registry, publisher: Publisher, receiver: Receiver
) -> None:
    hooks = Webhooks(registry, allow=LOOPBACK)
    other = make_publisher(registry, "other")
    with pytest.raises(ForbiddenError):
        hooks.add(receiver.url, ["alias.moved"], namespace=None, principal=publisher.principal)
    with pytest.raises(ForbiddenError):
        hooks.add(receiver.url, ["alias.moved"], namespace="other", principal=publisher.principal)
    hook, _ = hooks.add(receiver.url, ["alias.moved"], namespace="acme", principal=publisher.principal)
    other.publish("thing", "1.0.0")
    Aliases(registry).set("other/thing", "prod", "1.0.0", principal=other.principal)
    publisher.publish("pixel-art", "1.0.0")
    Aliases(registry).set("acme/pixel-art", "prod", "1.0.0", principal=publisher.principal)
    hooks.deliver_due(worker="w1", **FAST)
    assert [e["data"]["name"] for e in receiver.bodies()] == ["acme/pixel-art"]
    assert [h.id for h in hooks.of(other.principal)] == []
    with pytest.raises(Exception, match="no webhook"):
        hooks.deliveries(hook.id, principal=other.principal)


@pytest.mark.parametrize("events", [[], ["version.exploded"]], ids=["none", "unknown"])
def test_hook_needs_known_event_types(registry: Registry, receiver: Receiver, events: list[str]) -> None:
    with pytest.raises(InputError, match="event"):
        Webhooks(registry, allow=LOOPBACK).add(
            receiver.url, events, namespace=None, principal=_admin(registry)
        )


def test_two_replicas_never_deliver_one_event_twice(
    tmp_path: Path, database_url: str, receiver: Receiver
) -> None:
    first = open_registry(tmp_path / "data", database_url=database_url)
    second = open_registry(tmp_path / "data", database_url=database_url)
    publisher = make_publisher(first, "acme")
    Webhooks(first, allow=LOOPBACK).add(
        receiver.url, ["alias.moved"], namespace=None, principal=_admin(first)
    )
    publisher.publish("pixel-art", "1.0.0")
    publisher.publish("pixel-art", "2.0.0")
    moves = 24
    for i in range(moves):
        Aliases(first).set(
            "acme/pixel-art", "prod", "1.0.0" if i % 2 else "2.0.0", principal=publisher.principal
        )
    replicas = [Webhooks(r, allow=LOOPBACK) for r in (first, second, first, second)]

    def drain(hooks: Webhooks, worker: str) -> None:
        while hooks.deliver_due(worker=worker, limit=3, **FAST):
            pass

    threads = [threading.Thread(target=drain, args=(h, f"w{i}")) for i, h in enumerate(replicas)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    ids = [headers["x-lorareg-delivery"] for headers, _ in receiver.received]
    assert len(ids) == moves and len(set(ids)) == moves


# -- end to end: API and CLI, and a kill -9 between enqueue and delivery -----------------------------------
def test_webhook_commands_over_http(
    live_server_factory: Callable[..., LiveServer],
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = live_server_factory(webhook_allow="loopback", webhook_poll_s=0.2)
    publisher_token = server.add_publisher("acme")
    monkeypatch.setenv("LORAREG_REGISTRY", server.url)
    monkeypatch.setenv("LORAREG_TOKEN", server.token("admin"))
    code, out, err = run_main(
        monkeypatch, capsys, "webhook", "add", receiver.url, "--event", "version.published", "--json"
    )
    assert code == 0, err
    hook = json.loads(out)
    assert hook["secret"] and hook["events"] == ["version.published"]
    path, bundle = server.adapter("acme/pixel-art", "1.0.0")
    with server.client(publisher_token) as client:
        client.publish(path, bundle)
    receiver.wait_for(1)  # the server's own worker thread sends it
    assert receiver.bodies()[0]["data"]["version"] == "1.0.0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        code, out, _ = run_main(monkeypatch, capsys, "webhook", "deliveries", hook["id"], "--json")
        if json.loads(out)["deliveries"][0]["status"] == "delivered":
            break
        time.sleep(0.1)
    assert json.loads(out)["deliveries"][0]["log"][0]["status_code"] == 200
    code, out, _ = run_main(monkeypatch, capsys, "webhook", "list")
    assert code == 0 and hook["id"] in out
    refused = httpx.post(
        f"{server.url}/api/v1/webhooks",
        json={"url": "http://169.254.169.254/", "events": ["version.published"]},
        headers={"Authorization": f"Bearer {server.token('admin')}"},
    )
    assert refused.status_code == 400 and "link-local" in refused.json()["error"]["message"]
    monkeypatch.setenv("LORAREG_TOKEN", publisher_token)
    code, _, err = run_main(
        monkeypatch, capsys, "webhook", "add", receiver.url, "--event", "version.published"
    )
    assert code == 2 and err.startswith("error: ")
    monkeypatch.setenv("LORAREG_TOKEN", server.token("admin"))
    assert run_main(monkeypatch, capsys, "webhook", "delete", hook["id"])[0] == 0


def test_delivery_survives_kill_9_between_enqueue_and_send(
    deployment: Deployment, serve_process: Callable[..., ServeProcess], receiver: Receiver
) -> None:
    admin_registry = deployment.registry()
    publisher = make_publisher(admin_registry, "acme")
    Webhooks(admin_registry, allow=LOOPBACK).add(
        receiver.url, ["version.published"], namespace=None, principal=_admin(admin_registry)
    )
    settings = {
        "LORAREG_WEBHOOK_ALLOW": "loopback",
        "LORAREG_WEBHOOK_POLL_S": "1",
        "LORAREG_WEBHOOK_LEASE_S": "1",
    }
    doomed = serve_process(deployment, env={**settings, "LORAREG_FAULT": "before-webhook-send"})
    built = build_adapter(publisher.key, "acme/crash", "1.0.0")
    auth = {"Authorization": f"Bearer {publisher.secret}"}
    put = httpx.put(f"{doomed.url}/api/v1/blobs/sha256/{built.sha256}", content=built.data, headers=auth)
    assert put.status_code == 201
    published = httpx.post(
        f"{doomed.url}/api/v1/adapters/acme/crash/versions", content=built.bundle, headers=auth
    )
    assert published.status_code == 201  # committed with its delivery row; the worker then dies claiming it
    assert doomed.wait() == -signal.SIGKILL, doomed.log()
    assert receiver.received == []

    serve_process(deployment, env=settings)
    receiver.wait_for(1)
    time.sleep(1.5)  # nothing more may arrive
    assert [e["data"]["name"] for e in receiver.bodies()] == ["acme/crash"]
