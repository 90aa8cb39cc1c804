"""Which base-model family a live diffusers pipeline belongs to, and the evidence for it.

Reads the pipeline's class and its denoiser's class and config (the UNet's cross-attention width and
addition embeddings, the transformer class and depth); it never runs the model. The evidence string goes
into refusal messages, so a user sees *why* lorareg thinks the pipeline is SD1 and not SDXL.

Deliberately not here: the adapter side (its family comes from the verified manifest and from the facts of
its header) and the module-by-module shape check (``structure.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SD1_CONTEXT_WIDTH = 768  # CLIP-L hidden size: SD1.x cross-attention context width
SD2_CONTEXT_WIDTH = 1024  # OpenCLIP-H hidden size: SD2.x cross-attention context width
_TRANSFORMER_FAMILIES = {
    "SD3Transformer2DModel": "sd3",
    "FluxTransformer2DModel": "flux1",
    "Flux2Transformer2DModel": "flux2",
}
_PIPELINE_NAME_FAMILIES = (
    ("Kandinsky", "kandinsky"),
    ("Wuerstchen", "wuerstchen"),
    ("StableCascade", "wuerstchen"),
)


@dataclass(frozen=True, slots=True)
class PipelineFamily:
    """A pipeline's family (one of ``lorareg.adapter.facts.FAMILIES``) and a short human account of the
    evidence."""

    family: str
    evidence: str

    def describe(self) -> str:
        """``sd1 (UNet cross-attention width 768)``: the form refusal messages use."""
        return f"{self.family} ({self.evidence})"


def detect_family(pipe: Any) -> PipelineFamily:
    """Tell the family of ``pipe`` from its classes and configs.

    Args:
        pipe: a diffusers pipeline (any object with ``unet`` or ``transformer`` components works).

    Returns:
        The family, ``unknown`` when nothing decides it (the structural check still applies then).
    """
    cls = type(pipe).__name__
    for marker, family in _PIPELINE_NAME_FAMILIES:
        if marker in cls:
            return PipelineFamily(family, f"pipeline class {cls}")
    transformer = _unwrap(getattr(pipe, "transformer", None))
    if transformer is not None:
        return _transformer_family(transformer)
    unet = _unwrap(getattr(pipe, "unet", None))
    if unet is not None:
        return _unet_family(unet)
    return PipelineFamily("unknown", f"pipeline class {cls} has neither a UNet nor a transformer")


def _unwrap(model: Any) -> Any:
    """The model behind ``torch.compile``'s wrapper, whose class and config tell the family."""
    return getattr(model, "_orig_mod", model)


def _transformer_family(transformer: Any) -> PipelineFamily:
    name = type(transformer).__name__
    config = getattr(transformer, "config", {})
    family = _TRANSFORMER_FAMILIES.get(name, "unknown")
    width = _get(config, "num_attention_heads", 0) * _get(config, "attention_head_dim", 0)
    if family == "sd3":
        depth = f"{_get(config, 'num_layers', '?')} joint blocks"
    elif family in ("flux1", "flux2"):
        double, single = _get(config, "num_layers", "?"), _get(config, "num_single_layers", "?")
        depth = f"{double} double + {single} single blocks"
    else:
        depth = "unrecognised transformer"
    return PipelineFamily(family, f"{name}, {depth}, width {width}")


def _unet_family(unet: Any) -> PipelineFamily:
    config = getattr(unet, "config", {})
    width = _get(config, "cross_attention_dim", None)
    if isinstance(width, list | tuple):
        width = width[0] if len(set(width)) == 1 else tuple(width)
    if _get(config, "addition_embed_type", None) == "text_time":
        return PipelineFamily("sdxl", f"UNet with text_time additions, cross-attention width {width}")
    if width == SD1_CONTEXT_WIDTH:
        return PipelineFamily("sd1", f"UNet cross-attention width {width}")
    if width == SD2_CONTEXT_WIDTH:
        return PipelineFamily("sd2", f"UNet cross-attention width {width}")
    return PipelineFamily("unknown", f"UNet cross-attention width {width} matches no known family")


def _get(config: Any, key: str, default: Any) -> Any:
    """A config value from a diffusers ``FrozenDict`` (a dict) or an attribute-style config."""
    if isinstance(config, dict):
        return config.get(key, default)
    return getattr(config, key, default)
