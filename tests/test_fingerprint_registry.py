"""A taken-down adapter stays down when it comes back re-packaged (issue #12), end to end over HTTP.

Story: acme publishes ``acme/ink``; mallory publishes a renamed copy before anyone notices (recorded for
reviewers: similar to another namespace's active adapter). A takedown of ``acme/ink`` is upheld: the copy
already published is queued for review by the registry (not revoked), and every re-packaged copy published
afterwards under another name is refused with 451 naming ``acme/ink@1.0.0``, the similarity and the public
reason, while an unrelated adapter publishes. The similar-adapters API and ``lorareg similar`` show it all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import tests.support.fingerprint_variants as v
from lorareg.adapter.hashing import hash_file
from lorareg.errors import GoneError, NotFoundError
from lorareg.manifest.drafting import ManifestDraft
from lorareg.registry import fingerprints
from lorareg.signing.sign import sign_file
from tests.fixtures.server import LiveServer, draft_manifest
from tests.support.cli_runner import run_main

BASE = "sdxl"
COPIES: dict[str, Callable[[v.Adapter, v.Adapter], tuple[v.Adapter, dict[str, object]]]] = {
    "peft-names": lambda a, o: (a, {"fmt": "peft"}),
    "diffusers-names": lambda a, o: (a, {"fmt": "diffusers"}),
    "bf16": lambda a, o: (a, {"dtype": "BF16"}),
    "alpha-rescaled": lambda a, o: (a, {"alpha": 64.0}),
    "rotated": lambda a, o: (v.rotated(a), {}),
    "svd-half-rank": lambda a, o: (v.svd_truncated(a), {}),
    "pruned": lambda a, o: (v.dropped(a), {}),
    "merged": lambda a, o: (v.merged(a, o), {}),
    "trained-further": lambda a, o: (v.trained_further(a), {}),
}


def _publish(server: LiveServer, token: str, path: Path, name: str) -> dict[str, object]:
    key = server.publisher_keys[name.split("/")[0]]
    bundle = sign_file(path, ManifestDraft.from_json(draft_manifest(name, "1.0.0")), key)
    with server.client(token) as client:
        return client.publish(path, bundle)


@pytest.fixture
def taken_down(live_server: LiveServer, tmp_path: Path) -> tuple[LiveServer, str, v.Adapter, v.Adapter]:
    """acme/ink published, mallory/early (a renamed copy) published, then acme/ink's takedown upheld."""
    mods = v.layout(BASE, blocks=1)
    original, other = v.trained(mods, seed=0), v.trained(mods, seed=7)
    acme, mallory = live_server.add_publisher("acme"), live_server.add_publisher("mallory")
    _publish(
        live_server, acme, v.write(tmp_path / "ink.safetensors", original, base=BASE, alpha=1.0), "acme/ink"
    )
    early = v.write(tmp_path / "early.safetensors", original, base=BASE, fmt="diffusers", dtype="F16")
    _publish(live_server, mallory, early, "mallory/early")
    with live_server.client() as client:
        filed = client.file_takedown(
            "acme/ink@1.0.0", reason="style", claimant="A. Painter", contact="painter@example.org",
            details="Trained on my portfolio.", good_faith=True,
        )  # fmt: skip
    with live_server.client(live_server.token("reviewer")) as client:
        client.decide_takedown(str(filed["id"]), decision="uphold", reason="my portfolio, no licence")
    return live_server, mallory, original, other


@pytest.mark.parametrize("copy", list(COPIES))
def test_repackaged_copy_of_a_revoked_adapter_is_refused_naming_it(
    copy: str, taken_down: tuple[LiveServer, str, v.Adapter, v.Adapter], tmp_path: Path
) -> None:
    server, mallory, original, other = taken_down
    factors, options = COPIES[copy](original, other)
    path = v.write(tmp_path / f"{copy}.safetensors", factors, base=BASE, **options)  # type: ignore[arg-type]
    with pytest.raises(GoneError) as refused:
        _publish(server, mallory, path, f"mallory/{copy}")
    message = str(refused.value)
    assert "acme/ink@1.0.0" in message and "weight similarity" in message
    assert "my portfolio, no licence" in message
    with server.client() as client, pytest.raises(NotFoundError):
        client.resolve(f"mallory/{copy}@1.0.0")  # nothing was stored: no version, no fingerprint
    with server.registry.db.read() as session:
        assert fingerprints.load(session, hash_file(path).sha256) is None


def test_unrelated_adapter_publishes_after_the_takedown(
    taken_down: tuple[LiveServer, str, v.Adapter, v.Adapter], tmp_path: Path
) -> None:
    server, mallory, _, other = taken_down
    path = v.write(tmp_path / "own.safetensors", other, base=BASE)
    assert _publish(server, mallory, path, "mallory/own")["ref"] == "mallory/own@1.0.0"


def test_cli_publish_of_a_copy_exits_1_with_one_line(
    taken_down: tuple[LiveServer, str, v.Adapter, v.Adapter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, mallory, original, _ = taken_down
    path = v.write(tmp_path / "cli.safetensors", original, base=BASE, fmt="peft")
    key_path = tmp_path / "mallory.key"
    key_path.write_bytes(server.publisher_keys["mallory"].to_pem())
    key_path.chmod(0o600)
    manifest = tmp_path / "m.toml"
    manifest.write_text(
        'name = "mallory/cli"\nversion = "1.0.0"\n[license]\nid = "MIT"\ncommercial_use = true\n'
        'derivatives = true\nattribution_required = false\n[consent]\nsubject = "style"\n'
        'status = "not-required"\n'
    )
    args = ["publish", str(path), "--manifest", str(manifest), "--key", str(key_path)]
    code, _, err = run_main(monkeypatch, capsys, *args, "--registry", server.url, "--token", mallory)
    assert code == 1
    assert err.startswith("error:") and err.count("\n") == 1 and "acme/ink@1.0.0" in err


def test_copy_published_before_the_takedown_is_queued_for_review_not_revoked(
    taken_down: tuple[LiveServer, str, v.Adapter, v.Adapter],
) -> None:
    server = taken_down[0]
    with server.client(server.token("reviewer")) as client:
        queue = client.list_takedowns(status="pending")["items"]
        early = server.registry.resolve("mallory/early@1.0.0")
    assert early.summary.status == "active"
    queued = [r for r in queue if r["name"] == "mallory/early"]
    assert len(queued) == 1
    assert "near-duplicate of acme/ink@1.0.0" in queued[0]["details"]
    upheld = [r for r in client_requests(server) if r["name"] == "acme/ink"][0]
    assert upheld["id"] in queued[0]["details"]


def client_requests(server: LiveServer) -> list[dict[str, object]]:
    with server.client(server.token("reviewer")) as client:
        return list(client.list_takedowns()["items"])


def test_similar_api_and_cli_show_the_revoked_original(
    taken_down: tuple[LiveServer, str, v.Adapter, v.Adapter],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, _, original, _ = taken_down
    answer = httpx.get(
        f"{server.url}/api/v1/adapters/mallory/early/versions/1.0.0/similar", timeout=10
    ).json()
    assert answer["fingerprinted"] is True
    top = answer["similar"][0]
    assert (top["ref"], top["status"]) == ("acme/ink@1.0.0", "revoked")
    assert top["similarity"] >= 0.9 and top["coverage"] >= 0.9
    with server.client() as client:
        flags = fingerprints.possible_reuploads(server.registry.db, "mallory/early", "1.0.0", threshold=0.9)
        assert [m.ref for m in flags] == ["acme/ink@1.0.0"]
        assert client.resolve("mallory/early@1.0.0")["version"] == "1.0.0"
    local = v.write(tmp_path / "local.safetensors", v.rotated(original), base=BASE, fmt="peft")
    for target in (str(local), "mallory/early"):
        code, out, err = run_main(monkeypatch, capsys, "similar", target, "--json", "--registry", server.url)
        assert code == 0, err
        refs = [m["ref"] for m in json.loads(out)["similar"]]
        assert "acme/ink@1.0.0" in refs
    code, _, err = run_main(monkeypatch, capsys, "similar", "nobody/none@1.0.0", "--registry", server.url)
    assert code == 3 and err.startswith("error:")


def test_other_namespace_copy_is_flagged_at_publish(
    taken_down: tuple[LiveServer, str, v.Adapter, v.Adapter],
) -> None:
    server = taken_down[0]
    with server.registry.db.read() as session:
        flags = fingerprints.flags_of(session, "mallory/early", "1.0.0")
    assert [(f.similar_name, f.similar_version) for f in flags] == [("acme/ink", "1.0.0")]
    assert flags[0].similarity >= 0.9


def test_web_shows_similar_adapters_and_possible_reupload_to_reviewers(
    taken_down: tuple[LiveServer, str, v.Adapter, v.Adapter],
) -> None:
    server = taken_down[0]
    queued = [r for r in client_requests(server) if r["name"] == "mallory/early"][0]
    with httpx.Client(base_url=server.url, timeout=10) as web:
        page = web.get("/adapters/mallory/early/1.0.0").text
        panel = page[page.index('id="similar-adapters"') :]
        assert "acme/ink@1.0.0" in panel and "revoked" in panel
        sign_in = web.get("/review/sign-in").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', sign_in)
        assert csrf is not None
        web.post("/review/sign-in", data={"csrf_token": csrf.group(1), "token": server.token("reviewer")})
        review = web.get(f"/review/{queued['id']}").text
    assert "possible re-upload of" in review and "acme/ink@1.0.0" in review


def test_demo_catalogue_shows_its_repackaged_copy(live_server: LiveServer) -> None:
    from lorareg.demo.catalogue import seed_demo

    seed_demo(live_server.registry, live_server.data_dir)
    url = f"{live_server.url}/api/v1/adapters/acme/pixel-art/versions/1.2.0/similar"
    similar = httpx.get(url, timeout=10).json()["similar"]
    assert similar[0]["ref"] == "inkworks/retro-sprites@1.0.0"
    assert similar[0]["similarity"] >= 0.99 and similar[0]["scale"] == pytest.approx(4.0, rel=0.05)
    assert all(m["similarity"] < 0.3 for m in similar[1:])
    page = httpx.get(f"{live_server.url}/adapters/acme/pixel-art/1.2.0", timeout=10).text
    assert "inkworks/retro-sprites@1.0.0" in page[page.index('id="similar-adapters"') :]


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f{", b'\x0b\x00\x00\x00{"v": 1}'],
    ids=["empty", "empty-head", "head-past-the-end", "head-without-fields"],
)
def test_similar_to_a_malformed_fingerprint_is_bad_input(live_server: LiveServer, body: bytes) -> None:
    answer = httpx.post(f"{live_server.url}/api/v1/similar", content=body, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_input"
