"""Benchmark: ``load_verified_lora`` against plain ``pipe.load_lora_weights(path)`` of the same file.

A full-size SD1.5 UNet (its published config, written below; random weights, nothing downloaded) inside a
StableDiffusionPipeline whose other parts are tiny, and a rank-32 kohya adapter with SD1.5's real key layout
(192 UNet modules: attention q/k/v/out, GEGLU feed-forward, 1x1-conv proj_in/proj_out; fp16 like trainers
write). Both loaders run on the same pipeline, alternating, the adapter deleted between runs; the report
is the median of ``--runs`` each and the ratio (target: at most 1.15x).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/load.py [--runs 5] [--rank 32]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts benchmarks/ first on the path, where sibling benchmarks (inspect.py) would
# shadow standard modules; the repository root replaces it.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402
from diffusers import StableDiffusionPipeline, UNet2DConditionModel  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from lorareg.loader import load_verified_lora  # noqa: E402
from lorareg.manifest import ManifestDraft  # noqa: E402
from lorareg.signing.keys import generate  # noqa: E402
from lorareg.signing.policy import Policy  # noqa: E402
from lorareg.signing.sign import sign_file  # noqa: E402
from lorareg.signing.trust import TrustedKey, TrustStore  # noqa: E402
from tests.support import tiny_pipelines as tiny  # noqa: E402

SD15_UNET_CONFIG = {  # runwayml/stable-diffusion-v1-5 unet/config.json
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
}
TARGETS = (
    "attn1.to_q",
    "attn1.to_k",
    "attn1.to_v",
    "attn1.to_out.0",
    "attn2.to_q",
    "attn2.to_k",
    "attn2.to_v",
    "attn2.to_out.0",
    "ff.net.0.proj",
    "ff.net.2",
    "proj_in",
    "proj_out",
)


def kohya_adapter(unet: torch.nn.Module, rank: int) -> dict[str, torch.Tensor]:
    """Rank-``rank`` kohya tensors for every SD1.5 module kohya trains (192 of them)."""
    torch.manual_seed(0)
    out: dict[str, torch.Tensor] = {}
    for name, module in unet.named_modules():
        if not name.endswith(TARGETS) or "attentions" not in name:
            continue
        stem = "lora_unet_" + name.replace(".", "_")
        conv = isinstance(module, torch.nn.Conv2d)
        fan_in = module.in_channels if conv else module.in_features
        fan_out = module.out_channels if conv else module.out_features
        tail = (1, 1) if conv else ()
        out[f"{stem}.lora_down.weight"] = (torch.randn(rank, fan_in, *tail) * 0.01).half()
        out[f"{stem}.lora_up.weight"] = (torch.randn(fan_out, rank, *tail) * 0.01).half()
        out[f"{stem}.alpha"] = torch.tensor(float(rank))
    return out


def build_pipeline() -> StableDiffusionPipeline:
    unet = UNet2DConditionModel(**SD15_UNET_CONFIG).eval()  # type: ignore[arg-type]
    pipe = tiny.sd_pipeline()
    pipe.unet = unet
    return pipe


def timed(action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rank", type=int, default=32)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    pipe = build_pipeline()
    key = generate()
    entry = TrustedKey(
        keyid=key.key_id, label="bench", role="publisher", namespace="bench", public_key=key.public_key
    )
    trust = TrustStore((entry,), Policy())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sd15-r32.safetensors"
        state = kohya_adapter(pipe.unet, args.rank)
        save_file(state, str(path), metadata={"ss_network_module": "networks.lora"})
        draft = {
            "name": "bench/sd15",
            "version": "1.0.0",
            "consent": {"subject": "style", "status": "not-required"},
            "license": {
                "id": "CreativeML-OpenRAIL-M",
                "commercial_use": True,
                "derivatives": True,
                "attribution_required": False,
            },
        }
        Path(f"{path}.sig").write_bytes(sign_file(path, ManifestDraft.from_json(draft), key))
        size_mb = path.stat().st_size / 2**20
        print(f"adapter: {len(state) // 3} modules, rank {args.rank}, {size_mb:.1f} MiB; runs: {args.runs}")
        plain: list[float] = []
        verified: list[float] = []
        for run in range(args.runs + 1):  # run 0 warms both paths (peft wraps the layers once)
            p = timed(lambda: pipe.load_lora_weights(str(path), adapter_name="plain"))
            pipe.delete_adapters("plain")
            v = timed(lambda: load_verified_lora(pipe, path, trust=trust, adapter_name="verified"))
            pipe.delete_adapters("verified")
            pipe._lorareg_adapters = {}
            if run:
                plain.append(p)
                verified.append(v)
    p_med, v_med = statistics.median(plain), statistics.median(verified)
    print(f"plain load_lora_weights(path): median {p_med * 1000:.0f} ms  {[round(x * 1000) for x in plain]}")
    print(
        f"load_verified_lora:            median {v_med * 1000:.0f} ms  {[round(x * 1000) for x in verified]}"
    )
    print(f"ratio verified/plain: {v_med / p_med:.3f}x (target <= 1.15x)")
    print(f"ratio of minimums (less sensitive to a busy machine): {min(verified) / min(plain):.3f}x")


if __name__ == "__main__":
    main()
