"""The loader follows ``ns/name@prod`` like ``pull``: it loads the version the alias gave, and refuses once
that version is yanked (a pipeline pinned to ``@prod`` must stop, not silently load a withdrawn adapter)."""

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


def test_pipeline_loads_the_alias_target_and_refuses_once_it_is_yanked(
    live_server: Any, tmp_path: Path
) -> None:
    sd1 = tiny.sd_pipeline()
    token = live_server.add_publisher("acme")
    path = tmp_path / "ink.safetensors"
    path.write_bytes(
        tiny.diffusers_lora_bytes(
            tiny.sd_unet(cross_attention_dim=768), component="unet", targets=tiny.SD_TARGETS
        )
    )
    draft = ManifestDraft.from_json(draft_manifest("acme/ink", "1.2.0"))
    trust, _ = live_server.trust()
    base = tiny.render(sd1)
    with live_server.client(token) as client:
        client.publish(path, sign_file(path, draft, live_server.publisher_keys["acme"]))
        client.set_alias("acme/ink", "prod", "1.2.0")
        use = load_verified_lora(sd1, "acme/ink@prod", registry=client, trust=trust)
        assert use.ref == "acme/ink@1.2.0"
        unload_lora(sd1, use.adapter_name)
        client.yank("acme/ink@1.2.0")
        with pytest.raises(VerificationError, match="which is yanked"):
            load_verified_lora(sd1, "acme/ink@prod", registry=client, trust=trust)
    assert sd1.get_list_adapters() == {}
    assert torch.equal(tiny.render(sd1), base)
