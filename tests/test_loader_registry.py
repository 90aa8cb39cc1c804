"""The loader against a live registry: pull by reference, and refuse a revoked adapter even from the cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from lorareg import load_verified_lora, unload_lora
from lorareg.errors import VerificationError
from lorareg.manifest import ManifestDraft
from lorareg.signing.sign import sign_file
from tests.fixtures.server import draft_manifest
from tests.support import tiny_pipelines as tiny


@pytest.fixture(scope="module")
def sd1() -> Any:
    return tiny.sd_pipeline()


def test_revoked_adapter_is_refused_even_from_cache(sd1: Any, live_server: Any, tmp_path: Path) -> None:
    token = live_server.add_publisher("acme")
    path = tmp_path / "ink.safetensors"
    path.write_bytes(
        tiny.diffusers_lora_bytes(
            tiny.sd_unet(cross_attention_dim=768), component="unet", targets=tiny.SD_TARGETS
        )
    )
    draft = ManifestDraft.from_json(draft_manifest("acme/ink", "1.0.0"))
    live_server.client(token).publish(path, sign_file(path, draft, live_server.publisher_keys["acme"]))
    trust, _ = live_server.trust()
    base = tiny.render(sd1)
    with live_server.client() as client:
        use = load_verified_lora(sd1, "acme/ink@1.0.0", registry=client, trust=trust)
        assert use.ref == "acme/ink@1.0.0"
        assert client.cache.lookup(use.sha256) is not None
        unload_lora(sd1, use.adapter_name)
        reviewer = live_server.registry.authenticate(live_server.token("admin"))
        live_server.registry.revoke(use.sha256, reason="takedown upheld: likeness", principal=reviewer)
        cached = client.cache.lookup(use.sha256)
        assert cached is not None
        with pytest.raises(VerificationError, match="revoked"):
            load_verified_lora(
                sd1, cached, signature=client.cache.bundle_path(use.sha256), registry=client, trust=trust
            )
    assert sd1.get_list_adapters() == {}
    assert torch.equal(tiny.render(sd1), base)
