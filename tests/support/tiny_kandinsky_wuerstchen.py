"""Tiny Kandinsky 2.2 decoder and Würstchen prior pipelines, and adapters as their training scripts save them.

Kandinsky 2.2: ``KandinskyV22Pipeline`` (UNet with added-KV ``SimpleCrossAttn`` blocks, image-embedding
conditioning, MoVQ); diffusers' ``train_text_to_image_lora_decoder.py`` saves attention-processor weights
(``<attention>.processor.to_q_lora.down.weight``, ``add_k_proj_lora``...). Würstchen: the prior pipeline
(``WuerstchenPriorPipeline``, ``unet_name = "prior"``); its LoRA script saves peft keys under ``prior.``.
Renders use fixed image embeddings (Kandinsky) or a prompt through a tiny CLIP (Würstchen); 2 steps.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    KandinskyV22Pipeline,
    UNet2DConditionModel,
    VQModel,
    WuerstchenPriorPipeline,
)
from diffusers.pipelines.deprecated.wuerstchen import WuerstchenPrior
from diffusers.schedulers import DDPMWuerstchenScheduler
from safetensors.torch import save

from tests.support import tiny_pipelines as tiny

IMAGE_EMBED = 32
KANDINSKY_MODULES = ("to_q", "to_k", "to_v", "to_out", "add_k_proj", "add_v_proj")


def kandinsky_unet(channels: tuple[int, int] = (8, 16)) -> UNet2DConditionModel:
    torch.manual_seed(0)
    return UNet2DConditionModel(
        in_channels=4,
        out_channels=8,  # mean and variance
        addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=channels,
        layers_per_block=1,
        encoder_hid_dim=IMAGE_EMBED,
        encoder_hid_dim_type="image_proj",
        cross_attention_dim=24,
        attention_head_dim=4,
        resnet_time_scale_shift="scale_shift",
        class_embed_type=None,
        norm_num_groups=4,
    ).eval()


def kandinsky_pipeline() -> KandinskyV22Pipeline:
    movq = VQModel(
        block_out_channels=[32, 32],
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        norm_type="spatial",
        num_vq_embeddings=12,
        vq_embed_dim=4,
    ).eval()
    scheduler = DDIMScheduler(clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = KandinskyV22Pipeline(unet=kandinsky_unet(), scheduler=scheduler, movq=movq)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render_kandinsky(pipe: Any) -> torch.Tensor:
    embeds = torch.randn(1, IMAGE_EMBED, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = pipe(
            image_embeds=embeds,
            negative_image_embeds=torch.zeros(1, IMAGE_EMBED),
            height=tiny.IMAGE_PX,
            width=tiny.IMAGE_PX,
            num_inference_steps=tiny.STEPS,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        )
    return out.images[0].clone()


def kandinsky_processor_lora(unet: UNet2DConditionModel, *, rank: int = 2, seed: int = 5) -> bytes:
    """Attention-processor LoRA weights of every added-KV attention, as the decoder LoRA script saves them."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for path, module in unet.named_modules():
        if getattr(module, "add_k_proj", None) is None:
            continue
        for name in KANDINSKY_MODULES:
            layer = module.to_out[0] if name == "to_out" else getattr(module, name)
            out_f, in_f = layer.weight.shape
            state[f"{path}.processor.{name}_lora.down.weight"] = torch.randn(rank, in_f, generator=generator)
            state[f"{path}.processor.{name}_lora.up.weight"] = torch.randn(out_f, rank, generator=generator)
    return save(state)


def wuerstchen_prior(c: int = 8) -> WuerstchenPrior:
    torch.manual_seed(0)
    return WuerstchenPrior(c_in=2, c=c, c_cond=32, c_r=8, depth=1, nhead=2).eval()


def wuerstchen_pipeline() -> WuerstchenPriorPipeline:
    torch.manual_seed(0)
    pipe = WuerstchenPriorPipeline(
        tokenizer=tiny.make_tokenizer(),
        text_encoder=tiny._clip(32),
        prior=wuerstchen_prior(),
        scheduler=DDPMWuerstchenScheduler(),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render_wuerstchen(pipe: Any) -> torch.Tensor:
    with torch.no_grad():
        out = pipe(
            "a cat",
            num_inference_steps=tiny.STEPS,
            height=tiny.IMAGE_PX,
            width=tiny.IMAGE_PX,
            generator=torch.Generator().manual_seed(0),
            output_type="pt",
        )
    return out.image_embeddings[0].clone()


def wuerstchen_lora(prior: WuerstchenPrior) -> bytes:
    """peft LoRA on the prior's attention, saved under ``prior.`` as the prior LoRA script does."""
    state = tiny.peft_adapter_state(prior, targets=["to_q", "to_k", "to_v", "to_out.0"], rank=2)
    return save({f"prior.{k}": v for k, v in state.items()})
