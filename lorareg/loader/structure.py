"""Does an adapter fit *this* pipeline, module by module? Decided from header shapes, before any weight loads.

The adapter's keys are mapped the way diffusers will map them when it loads the file: the pipeline class's
own ``lora_state_dict`` runs (with its kohya/SGM/XLabs converters from
``diffusers.loaders.lora_conversion_utils``) on a state dict of *meta* tensors with the header's shapes, so
the conversion costs no memory and no tensor data is read (the few 0-dim alphas, which converters read as
numbers, carry their real values). Each resulting target module must then exist in the pipeline component
with the adapter's in/out features (and kernel for convolutions).

Deliberately not here: family detection (``family.py``) and whether the bytes are trusted (the verifier).
diffusers' in-place expansion of FLUX base layers for Control LoRAs is not modelled: a wider adapter is
refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from diffusers.utils.state_dict_utils import (
    convert_state_dict_to_diffusers,
    convert_state_dict_to_peft,
    convert_unet_state_dict_to_peft,
)
from torch.overrides import TorchFunctionMode

from lorareg.adapter.safetensors import SafetensorsHeader
from lorareg.loader import component as unet_peft
from lorareg.loader.kohya_sd3 import convert_kohya_sd3, is_kohya_sd3

MAX_NAMED_MODULES = 5  # module names quoted in one refusal reason before "(+N more)"
_DOWN_SUFFIX = ".lora_A.weight"  # peft names, which every diffusers loading path converts to
_UP_SUFFIX = ".lora_B.weight"
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
}


@dataclass(frozen=True, slots=True)
class TargetModule:
    """One module an adapter changes, as diffusers will address it: ``component`` + dotted ``path``."""

    component: str
    path: str
    in_features: int
    out_features: int
    kernel: tuple[int, ...]  # () for a Linear-style (2-D) down projection

    @property
    def name(self) -> str:
        return f"{self.component}.{self.path}"


def adapter_targets(pipe: Any, header: SafetensorsHeader, scalars: Mapping[str, float]) -> list[TargetModule]:
    """Map the adapter's tensors to the modules diffusers will patch in ``pipe``.

    Args:
        pipe: the diffusers pipeline the adapter is meant for (its class picks the key converter).
        header: the verified file's parsed header (shapes only are used).
        scalars: values of 0-dim tensors (alphas), which converters read as numbers.

    Returns:
        The target modules, sorted by name.

    Raises:
        ValueError: diffusers' converter rejects the keys (the caller reports it as incompatibility).
    """
    state = _meta_state_dict(header, scalars)
    if is_kohya_sd3(pipe, state):
        state = convert_kohya_sd3(pipe, state)  # diffusers has no converter for these names
    if unet_peft.handles(pipe):  # no diffusers LoRA loader: the loader injects peft into the UNet
        converted = {f"{unet_peft.COMPONENT}.{k}": v for k, v in unet_peft.to_peft(state).items()}
    else:
        converted = _convert_like_diffusers(pipe, state)
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in converted.items():
        component, _, rest = key.partition(".")
        groups.setdefault(component, {})[rest] = tensor
    targets: list[TargetModule] = []
    for component, group in sorted(groups.items()):
        peft_keys = _to_peft_keys(getattr(pipe, component, None), component, group)
        targets.extend(_pair_targets(component, peft_keys))
    return sorted(targets, key=lambda t: t.name)


def check_structure(pipe: Any, targets: list[TargetModule]) -> list[str]:
    """Every reason the targets do not fit ``pipe``; empty when every module exists with matching features."""
    if not targets:
        return ["the adapter has no LoRA down/up pair that diffusers would load"]
    missing: list[str] = []
    mismatched: list[str] = []
    tables: dict[str, dict[str, Any]] = {}
    for target in targets:
        if target.component not in tables:
            tables[target.component] = _named_modules(getattr(pipe, target.component, None))
        module = tables[target.component].get(target.path)
        if module is None:
            missing.append(target.name)
            continue
        problem = _shape_problem(target, getattr(module, "base_layer", module))
        if problem:
            mismatched.append(problem)
    return _missing_reasons(missing, len(targets)) + _name_list("shape mismatch", mismatched)


def _meta_state_dict(header: SafetensorsHeader, scalars: Mapping[str, float]) -> dict[str, torch.Tensor]:
    """Tensors with the header's shapes on the meta device: converters see real shapes, no data is read."""
    out: dict[str, torch.Tensor] = {}
    for name, info in header.tensors.items():
        dtype = _DTYPES.get(info.dtype, torch.float32)
        if not info.shape and name in scalars:
            out[name] = torch.tensor(scalars[name], dtype=dtype)
        else:
            out[name] = torch.empty(info.shape, dtype=dtype, device="meta")
    return out


def _convert_like_diffusers(pipe: Any, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Run the pipeline class's own ``lora_state_dict`` (key detection and conversion) on ``state``."""
    convert = getattr(type(pipe), "lora_state_dict", None)
    if convert is None:
        raise ValueError(f"{type(pipe).__name__} cannot load LoRA adapters (no lora_state_dict)")
    kwargs: dict[str, Any] = {}
    unet = getattr(pipe, "unet", None)
    if unet is not None and "XL" in type(pipe).__name__:
        kwargs["unet_config"] = unet.config  # SDXL maps SGM block names with it, as load_lora_weights does
    with _MetaDataQuestions():
        result = convert(dict(state), **kwargs)
    converted = result[0] if isinstance(result, tuple) else result
    if not isinstance(converted, dict):
        raise ValueError(f"diffusers returned {type(converted).__name__}, expected a state dict")
    return converted


class _MetaDataQuestions(TorchFunctionMode):
    """Answer a converter's questions about tensor *values* on meta tensors: "not all" (dense weights).

    diffusers' kohya FLUX converter asks whether a fused qkv up-weight is block-sparse
    (``torch.all(up[...] == 0)``) when the rank divides by the number of splits; a meta tensor has no values
    to answer with and raises. A trained adapter's up-weight is dense, and either answer yields the same
    in/out features per module (only how the rank is split differs), so "no" keeps the shape check exact.
    """

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if func in _VALUE_QUESTIONS and args and getattr(args[0], "is_meta", False):
            return torch.tensor(False)
        return func(*args, **(kwargs or {}))


_VALUE_QUESTIONS: frozenset[Any] = frozenset({torch.all, torch.Tensor.all})


def _to_peft_keys(model: Any, component: str, group: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The renaming diffusers applies per component before peft injects (``loaders/peft.py``)."""
    if component.startswith("text_encoder"):
        group = convert_state_dict_to_peft(convert_state_dict_to_diffusers(group))  # type: ignore[no-untyped-call]
        if model is not None and not hasattr(model, "text_model"):
            group = {k.removeprefix("text_model."): v for k, v in group.items()}
        return group
    if group and "lora_A" not in next(iter(group)):
        return dict(convert_unet_state_dict_to_peft(group))  # type: ignore[no-untyped-call]
    return group


def _pair_targets(component: str, keys: dict[str, torch.Tensor]) -> list[TargetModule]:
    """Pair each down (A) with its up (B) projection; a lone half is not something peft would load."""
    targets = []
    for key, down in keys.items():
        if not key.endswith(_DOWN_SUFFIX):
            continue
        path = key[: -len(_DOWN_SUFFIX)]
        up = keys.get(path + _UP_SUFFIX)
        if up is not None:
            shape = tuple(down.shape)
            targets.append(TargetModule(component, path, shape[1], int(up.shape[0]), shape[2:]))
    return targets


def _named_modules(component: Any) -> dict[str, Any]:
    if not isinstance(component, torch.nn.Module):
        return {}
    return dict(component.named_modules())


def _shape_problem(target: TargetModule, module: Any) -> str | None:
    """Compare one target with the module it would patch; a sentence when they differ."""
    want = f"adapter has in {target.in_features} → out {target.out_features}"
    if isinstance(module, torch.nn.Linear):
        if target.kernel or (module.in_features, module.out_features) != (
            target.in_features,
            target.out_features,
        ):
            shape = f"{module.in_features} → {module.out_features}"
            return f"{target.name}: {want}, the pipeline's Linear is {shape}"
        return None
    if isinstance(module, torch.nn.Conv2d):
        kernel = tuple(module.kernel_size)
        same = (module.in_channels, module.out_channels) == (target.in_features, target.out_features)
        if not same or (target.kernel and target.kernel != kernel):
            return (
                f"{target.name}: {want} kernel {target.kernel or '(linear)'}, the pipeline's Conv2d is "
                f"{module.in_channels} → {module.out_channels} kernel {kernel}"
            )
        return None
    return f"{target.name}: {want}, the pipeline's module is a {type(module).__name__}, not Linear or Conv2d"


def _missing_reasons(missing: list[str], total: int) -> list[str]:
    if not missing:
        return []
    if len(missing) == total:
        return _name_list(
            f"none of the adapter's {total} target modules exist in this pipeline; missing", missing
        )
    return _name_list(f"{len(missing)} of {total} target modules are missing from this pipeline", missing)


def _name_list(head: str, items: list[str]) -> list[str]:
    if not items:
        return []
    shown = ", ".join(items[:MAX_NAMED_MODULES])
    more = f" (+{len(items) - MAX_NAMED_MODULES} more)" if len(items) > MAX_NAMED_MODULES else ""
    return [f"{head}: {shown}{more}"]
