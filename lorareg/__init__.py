"""lorareg: registry and provenance for LoRA adapters of image diffusion models.

The public Python API is re-exported here. Names that need torch/diffusers (the loader) are imported
lazily on first use, so ``import lorareg`` never imports torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "attribution",
    "inspect_file",
    "load_verified_lora",
    "save_image",
    "unload_lora",
]

_LAZY: dict[str, str] = {
    "attribution": "lorareg.image_provenance",
    "inspect_file": "lorareg.inspect",
    "load_verified_lora": "lorareg.loader",
    "save_image": "lorareg.image_provenance",
    "unload_lora": "lorareg.loader",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lorareg' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
