"""Tiny SD1-, SD2-, SDXL-, SD3- and FLUX-style diffusers pipelines, built in code with random weights.

Nothing is downloaded: the configs are written here, the weights come from a seeded generator, and the
tokenizer is a word-level tokenizer whose vocabulary this module writes. The shapes that decide a pipeline's
family are kept real (SD1 cross-attention width 768, SD2 1024, SDXL ``text_time`` additions, the SD3 and
FLUX transformer classes); everything else is as small as the models allow, so one image of 32x32 pixels in
two steps costs milliseconds on a CPU.

Also builds adapters with peft on these pipelines, in diffusers and kohya key layouts.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    FlowMatchEulerDiscreteScheduler,
    FluxPipeline,
    FluxTransformer2DModel,
    SD3Transformer2DModel,
    StableDiffusion3Pipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from diffusers.utils.state_dict_utils import convert_state_dict_to_diffusers, convert_state_dict_to_kohya
from peft import LoraConfig, get_peft_model_state_dict
from safetensors.torch import save
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    PreTrainedTokenizerFast,
    T5Config,
    T5EncoderModel,
)

TOKENS_MAX = 8  # prompt length in tokens: short prompts keep the text encoders cheap
IMAGE_PX = 32  # image height and width of every test image
STEPS = 2  # denoising steps per test image
SD3_HEAD_DIM = 64  # SD3's attention head size; its widths are multiples of it
_WORDS = "a an the cat dog ink pixel art photo of red blue green portrait style painting".split()
_SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
SD_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def make_tokenizer() -> PreTrainedTokenizerFast:
    """A word-level tokenizer over a small vocabulary written here (no vocab file is downloaded)."""
    vocab = {tok: i for i, tok in enumerate(_SPECIALS + _WORDS)}
    model = Tokenizer(WordLevel(vocab=vocab, unk_token="<unk>"))
    model.pre_tokenizer = Whitespace()  # type: ignore[assignment]
    return PreTrainedTokenizerFast(
        tokenizer_object=model,
        unk_token="<unk>",
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        model_max_length=TOKENS_MAX,
    )


def _clip(hidden: int, *, projection: int | None = None) -> CLIPTextModel | CLIPTextModelWithProjection:
    config = CLIPTextConfig(
        vocab_size=len(_SPECIALS) + len(_WORDS),
        hidden_size=hidden,
        intermediate_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=TOKENS_MAX,
        projection_dim=projection or hidden,
        eos_token_id=3,
        bos_token_id=2,
        pad_token_id=0,
    )
    if projection is None:
        return CLIPTextModel(config).eval()
    return CLIPTextModelWithProjection(config).eval()


def _vae(*, latent_channels: int = 4, shift: float | None = None) -> AutoencoderKL:
    return AutoencoderKL(
        block_out_channels=(8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=latent_channels,
        norm_num_groups=2,
        layers_per_block=1,
        sample_size=IMAGE_PX,
        shift_factor=shift,
        scaling_factor=1.0,
        use_quant_conv=shift is None,
        use_post_quant_conv=shift is None,
    ).eval()


def _ddim() -> DDIMScheduler:
    return DDIMScheduler(clip_sample=False, set_alpha_to_one=False, steps_offset=1)


def sd_unet(
    *, cross_attention_dim: int, channels: tuple[int, int] = (8, 16), **extra: Any
) -> UNet2DConditionModel:
    """A UNet of the SD layout: the width of its cross-attention decides SD1 (768) or SD2 (1024)."""
    torch.manual_seed(0)
    return UNet2DConditionModel(
        block_out_channels=channels,
        layers_per_block=1,
        sample_size=IMAGE_PX // 2,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=2,
        norm_num_groups=4,
        **extra,
    ).eval()


def sd_pipeline(
    *, cross_attention_dim: int = 768, channels: tuple[int, int] = (8, 16)
) -> StableDiffusionPipeline:
    """A tiny SD1-style (768) or SD2-style (1024) text-to-image pipeline."""
    torch.manual_seed(0)
    return StableDiffusionPipeline(
        vae=_vae(),
        text_encoder=_clip(cross_attention_dim),
        tokenizer=make_tokenizer(),
        unet=sd_unet(cross_attention_dim=cross_attention_dim, channels=channels),
        scheduler=_ddim(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def sdxl_unet() -> UNet2DConditionModel:
    """A UNet of the SDXL layout: ``text_time`` additions and two text encoders' widths (768 + 1280)."""
    return sd_unet(
        cross_attention_dim=768 + 1280,
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 32,
    )


def sdxl_pipeline() -> StableDiffusionXLPipeline:
    """A tiny SDXL-style pipeline."""
    torch.manual_seed(0)
    return StableDiffusionXLPipeline(
        vae=_vae(),
        text_encoder=_clip(768),
        text_encoder_2=_clip(1280, projection=32),
        tokenizer=make_tokenizer(),
        tokenizer_2=make_tokenizer(),
        unet=sdxl_unet(),
        scheduler=_ddim(),
    )


def sd3_transformer() -> SD3Transformer2DModel:
    """An MMDiT of the SD3 layout (two joint blocks, the last one ``context_pre_only``).

    Width 64 = 1 head of SD3's head size 64: every real SD3 width is a multiple of it, which is how an
    adapter's facts tell SD3 from FLUX, so the family check compares real families here.
    """
    torch.manual_seed(0)
    return SD3Transformer2DModel(
        sample_size=IMAGE_PX // 2,
        patch_size=1,
        in_channels=4,
        num_layers=2,
        attention_head_dim=SD3_HEAD_DIM,
        num_attention_heads=1,
        joint_attention_dim=32,
        caption_projection_dim=SD3_HEAD_DIM,
        pooled_projection_dim=64,
        out_channels=4,
        pos_embed_max_size=IMAGE_PX,
    ).eval()


def sd3_pipeline() -> StableDiffusion3Pipeline:
    """A tiny SD3-style pipeline without the T5 encoder (SD3 allows that)."""
    torch.manual_seed(0)
    return StableDiffusion3Pipeline(
        transformer=sd3_transformer(),
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_vae(shift=0.0),
        text_encoder=_clip(32, projection=32),
        tokenizer=make_tokenizer(),
        text_encoder_2=_clip(32, projection=32),
        tokenizer_2=make_tokenizer(),
        text_encoder_3=None,
        tokenizer_3=None,
    )


def flux_transformer() -> FluxTransformer2DModel:
    """A FLUX.1-layout transformer: one double and one single stream block."""
    torch.manual_seed(0)
    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=4,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,
        pooled_projection_dim=32,
        axes_dims_rope=(4, 4, 8),
    ).eval()


def flux_pipeline() -> FluxPipeline:
    """A tiny FLUX.1-style pipeline (CLIP + a small T5 encoder written from a config)."""
    torch.manual_seed(0)
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(_SPECIALS) + len(_WORDS),
            d_model=32,
            d_kv=8,
            d_ff=16,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
        )
    ).eval()
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=_vae(latent_channels=1, shift=0.0),
        text_encoder=_clip(32),
        tokenizer=make_tokenizer(),
        text_encoder_2=t5,
        tokenizer_2=make_tokenizer(),
        transformer=flux_transformer(),
    )


def render(pipe: Any, *, prompt: str = "a cat in pixel art style", seed: int = 0) -> torch.Tensor:
    """One tiny image as a float tensor, from a fixed seed, so two renders compare pixel for pixel."""
    generator = torch.Generator("cpu").manual_seed(seed)
    pipe.set_progress_bar_config(disable=True)
    kwargs: dict[str, Any] = {"max_sequence_length": TOKENS_MAX} if isinstance(pipe, FluxPipeline) else {}
    with torch.no_grad():
        out = pipe(
            prompt,
            num_inference_steps=STEPS,
            height=IMAGE_PX,
            width=IMAGE_PX,
            generator=generator,
            output_type="pt",
            **kwargs,
        )
    return out.images[0].clone()


def peft_adapter_state(
    model: torch.nn.Module, *, targets: list[str], rank: int = 4, seed: int = 1
) -> dict[str, torch.Tensor]:
    """Train-free peft LoRA on ``model``: random A and B (B is zero at init, which would change nothing)."""
    torch.manual_seed(seed)
    model.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets, init_lora_weights=False))  # type: ignore[operator]
    state = get_peft_model_state_dict(model)
    model.delete_adapters("default")  # type: ignore[operator]
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


def diffusers_lora_bytes(
    model: torch.nn.Module, *, component: str, targets: list[str], rank: int = 4
) -> bytes:
    """An adapter file in the diffusers/peft layout (``unet.<path>.lora_A.weight``), as safetensors bytes."""
    state = convert_state_dict_to_diffusers(peft_adapter_state(model, targets=targets, rank=rank))
    return save({f"{component}.{k}": v for k, v in state.items()}, metadata={"format": "pt"})


def peft_lora_bytes(model: torch.nn.Module, *, component: str, targets: list[str], rank: int = 4) -> bytes:
    """An adapter file in the diffusers-peft layout (``transformer.<path>.lora_A.weight``)."""
    state = peft_adapter_state(model, targets=targets, rank=rank)
    return save({f"{component}.{k}": v for k, v in state.items()}, metadata={"format": "pt"})


def kohya_lora_bytes(model: torch.nn.Module, *, targets: list[str], rank: int = 4) -> bytes:
    """An adapter file in the kohya layout (``lora_unet_<path>.lora_down.weight`` + float ``.alpha``)."""
    state = peft_adapter_state(model, targets=targets, rank=rank)
    kohya = convert_state_dict_to_kohya({f"unet.{k}": v for k, v in state.items()})
    out = {k: (v.float() if k.endswith(".alpha") else v) for k, v in kohya.items()}
    return save(out, metadata={"ss_network_module": "networks.lora"})
