"""lorareg: registry and provenance for LoRA adapters of image diffusion models.

The public Python API is re-exported here. Names that need torch/diffusers (the loader) are imported
lazily on first use, so ``import lorareg`` never imports torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Client",
    "IncompatibleAdapterError",
    "LoraregError",
    "Manifest",
    "Policy",
    "TrustStore",
    "VerificationError",
    "__version__",
    "attribution",
    "inspect_file",
    "load_verified_lora",
    "save_image",
    "sign_file",
    "unload_lora",
    "verify",
]

_LOADER = "lorareg.loader"  # the one module behind the diffusers extra
# public name -> (module, attribute); imported on first use so the CLI and server start fast.
_LAZY: dict[str, tuple[str, str]] = {
    "Client": ("lorareg.client", "Client"),
    "IncompatibleAdapterError": ("lorareg.errors", "IncompatibleAdapterError"),
    "LoraregError": ("lorareg.errors", "LoraregError"),
    "Manifest": ("lorareg.manifest", "Manifest"),
    "Policy": ("lorareg.signing.policy", "Policy"),
    "TrustStore": ("lorareg.signing.trust", "TrustStore"),
    "VerificationError": ("lorareg.errors", "VerificationError"),
    "attribution": ("lorareg.images.provenance", "attribution"),
    "inspect_file": ("lorareg.adapter.inspect", "inspect_file"),
    "load_verified_lora": ("lorareg.loader", "load_verified_lora"),
    "save_image": ("lorareg.images.provenance", "save_image"),
    "sign_file": ("lorareg.signing.sign", "sign_file"),
    "unload_lora": ("lorareg.loader", "unload_lora"),
    "verify": ("lorareg.signing.filecheck", "verify_file"),
}


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'lorareg' has no attribute {name!r}")
    import importlib

    module, attribute = target
    try:
        value = getattr(importlib.import_module(module), attribute)
    except ImportError as e:
        if module != _LOADER or e.name in (None, module) or str(e.name).startswith("lorareg"):
            raise
        raise ImportError(
            f"lorareg.{name} needs the 'diffusers' extra (torch, diffusers, peft, transformers), and "
            f"{e.name} is not installed: pip install 'lorareg[diffusers]'",
            name=e.name,
        ) from None
    globals()[name] = value
    return value
