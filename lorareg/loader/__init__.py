"""The verified diffusers loader: an adapter reaches a pipeline only after its exact bytes were checked.

This package is the only part of lorareg that imports torch, diffusers, peft and transformers (the
``diffusers`` extra); ``lorareg`` re-exports its public names lazily, so ``import lorareg`` stays light.

Modules: ``load`` (``load_verified_lora``, ``unload_lora``: the orchestration), ``source`` (one read of the
adapter, its signature file, the verified revocation list; no torch), ``family`` (the pipeline's base
family from its classes and configs), ``structure`` (adapter keys mapped the way diffusers maps them, and
compared module by module with the pipeline), ``stacking`` (how many adapters, how strong). Attribution
records live in :mod:`lorareg.images.provenance`, which needs no torch.
"""

from __future__ import annotations

from lorareg.loader.family import PipelineFamily, detect_family
from lorareg.loader.load import load_verified_lora, unload_lora
from lorareg.loader.stacking import LoraregWarning, StackingWarning
from lorareg.loader.structure import TargetModule, adapter_targets, check_structure

__all__ = [
    "LoraregWarning",
    "PipelineFamily",
    "StackingWarning",
    "TargetModule",
    "adapter_targets",
    "check_structure",
    "detect_family",
    "load_verified_lora",
    "unload_lora",
]
