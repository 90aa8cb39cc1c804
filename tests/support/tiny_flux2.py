"""A tiny FLUX.2 [klein] pipeline (the base BFL recommends for fine-tuning), built in code, no text encoder.

The Qwen3 text encoder and its chat-template tokenizer cannot be written here without downloads, so the
pipeline has none and every render passes fixed ``prompt_embeds`` (joint attention width 32) with
``guidance_scale=1`` (no negative prompt to encode). The transformer is the real ``Flux2Transformer2DModel``
class with one double and one single block: SwiGLU feed-forward (``ff.linear_in``) and the fused
single-block ``attn.to_qkv_mlp_proj``, the names that tell FLUX.2 from FLUX.1.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKLFlux2,
    FlowMatchEulerDiscreteScheduler,
    Flux2KleinPipeline,
    Flux2Transformer2DModel,
)

from tests.support.tiny_pipelines import IMAGE_PX, STEPS

JOINT_WIDTH = 32
FLUX2_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "add_k_proj", "ff.linear_in", "to_qkv_mlp_proj"]


def flux2_transformer() -> Flux2Transformer2DModel:
    torch.manual_seed(0)
    return Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=JOINT_WIDTH,
        timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=False,
    ).eval()


def flux2_pipeline() -> Flux2KleinPipeline:
    torch.manual_seed(0)
    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=2,
        layers_per_block=1,
        sample_size=IMAGE_PX,
    ).eval()
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=None,
        tokenizer=None,
        transformer=flux2_transformer(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render_flux2(pipe: Any, *, seed: int = 0) -> torch.Tensor:
    embeds = torch.randn(1, 8, JOINT_WIDTH, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = pipe(
            prompt_embeds=embeds,
            guidance_scale=1.0,
            num_inference_steps=STEPS,
            height=IMAGE_PX,
            width=IMAGE_PX,
            generator=torch.Generator("cpu").manual_seed(seed),
            output_type="pt",
        )
    return out.images[0].clone()
