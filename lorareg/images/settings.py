"""The AUTOMATIC1111 ``parameters`` text, in A1111's own key order, with what the pipeline knows filled in.

Readers are strict about shape, not content. A1111's ``parse_generation_parameters`` treats the last line as
settings only when it holds at least three ``Key: value`` pairs (else it is more prompt); Civitai's parser
takes the first line that *starts with* ``Steps: `` and ignores the settings otherwise. So the settings
line always starts with ``Steps`` and follows A1111's order (``processing.create_infotext``): steps,
sampler, schedule type, CFG scale, seed, size, model hash, model, VAE, ... then the caller's other keys, then
the extra-network keys (``Lora hashes``), ``Version``, and lorareg's own ``Lorareg`` key last.

The pipeline supplies what it knows (:func:`pipeline_settings`): steps (its scheduler's
``num_inference_steps`` after a run), sampler and schedule type (the scheduler's class and sigma options,
named as A1111 names them), CFG scale (the guidance the last call used), size (from the image) and model
name (the pipeline's ``name_or_path``). The call supplies the rest (seed, model hash) and wins on conflict.
No torch, no diffusers import: everything is read off the objects passed in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

AUTOV3_SHORT_HEX = 12  # A1111 "Lora hashes" carry the first 12 hex digits of AutoV3
_ORDER = (  # A1111 create_infotext order (the keys lorareg can be given)
    "steps",
    "sampler",
    "schedule_type",
    "cfg_scale",
    "image_cfg_scale",
    "seed",
    "face_restoration",
    "size",
    "model_hash",
    "model",
    "vae_hash",
    "vae",
    "variation_seed",
    "variation_seed_strength",
    "seed_resize_from",
    "denoising_strength",
    "clip_skip",
    "ensd",
)
_KEYS = {
    "cfg_scale": "CFG scale",
    "image_cfg_scale": "Image CFG scale",
    "model_hash": "Model hash",
    "vae_hash": "VAE hash",
    "vae": "VAE",
    "clip_skip": "Clip skip",
    "ensd": "ENSD",
}
_SAMPLERS = {  # diffusers scheduler class -> A1111 sampler name (diffusers' own scheduler docs table)
    "DDIMScheduler": "DDIM",
    "PNDMScheduler": "PLMS",
    "LMSDiscreteScheduler": "LMS",
    "EulerDiscreteScheduler": "Euler",
    "EulerAncestralDiscreteScheduler": "Euler a",
    "HeunDiscreteScheduler": "Heun",
    "KDPM2DiscreteScheduler": "DPM2",
    "KDPM2AncestralDiscreteScheduler": "DPM2 a",
    "DPMSolverMultistepScheduler": "DPM++ 2M",
    "DPMSolverSinglestepScheduler": "DPM++ SDE",
    "DPMSolverSDEScheduler": "DPM++ SDE",
    "UniPCMultistepScheduler": "UniPC",
    "DEISMultistepScheduler": "DEIS",
    "LCMScheduler": "LCM",
    "DDPMScheduler": "DDPM",
    "FlowMatchEulerDiscreteScheduler": "Euler",
}
_SCHEDULES = (
    ("use_karras_sigmas", "Karras"),
    ("use_exponential_sigmas", "Exponential"),
    ("use_beta_sigmas", "Beta"),
)
_SETTINGS_START = re.compile(r"^(\s*)(Steps: )", re.MULTILINE)
_REGISTRY_REF = re.compile(r"[\w.\-]+/[\w.\-]+@[\w.\-+]+")
_WEIGHT_DECIMALS = 4  # <lora:name:w> weights: readers take [0-9.]+, so never an exponent


class Attributed(Protocol):
    """The part of an ``AdapterUse`` the A1111 text needs."""

    @property
    def tag_name(self) -> str: ...
    @property
    def weight(self) -> float: ...
    @property
    def autov3(self) -> str: ...
    @property
    def ref(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def version(self) -> str | None: ...
    @property
    def sha256(self) -> str: ...


def pipeline_settings(pipe: Any, image: Any) -> dict[str, object]:
    """What ``pipe`` and ``image`` say about how the image was made; keys absent when unknown."""
    out: dict[str, object] = {}
    scheduler = getattr(pipe, "scheduler", None)
    steps = getattr(scheduler, "num_inference_steps", None)
    if isinstance(steps, int) and steps > 0:
        out["steps"] = steps
    out.update(_sampler(scheduler))
    guidance = getattr(pipe, "_guidance_scale", None)
    if isinstance(guidance, int | float) and not isinstance(guidance, bool):
        out["cfg_scale"] = float(guidance)
    size = getattr(image, "size", None)
    if isinstance(size, tuple) and len(size) == 2:  # noqa: PLR2004 - (width, height)
        out["size"] = f"{size[0]}x{size[1]}"
    model = _model_name(pipe)
    if model:
        out["model"] = model
    return out


def parameters_text(
    uses: Sequence[Attributed], *, prompt: str | None, params: Mapping[str, object], version: str
) -> str:
    """The A1111 ``parameters`` text: prompt + lora tags, optional negative prompt, one settings line."""
    tags = " ".join(f"<lora:{u.tag_name}:{weight_text(u.weight)}>" for u in uses)
    lines = [_defuse(" ".join(p for p in ((prompt or "").strip(), tags) if p))]
    rest = {k: v for k, v in params.items() if v is not None}
    negative = rest.pop("negative_prompt", None)
    if negative:
        lines.append("Negative prompt: " + _defuse(str(negative)))
    ordered = [k for k in _ORDER if k in rest] + [k for k in rest if k not in _ORDER]
    pairs = [f"{_key(k)}: {_value(rest[k])}" for k in ordered]
    if uses:
        hashes = ", ".join(f"{u.tag_name}: {u.autov3[:AUTOV3_SHORT_HEX]}" for u in uses)
        pairs.append(f'Lora hashes: "{hashes}"')
    pairs.append(f"Version: lorareg {version}")
    if uses:
        pairs.append(f'Lorareg: "{", ".join(f"{u.tag_name}: {_ref(u)}" for u in uses)}"')
    lines.append(", ".join(pairs))
    return "\n".join(lines)


def weight_text(weight: float) -> str:
    """``0.8``, ``1``, ``0.0001``: plain decimals, because readers match the weight with ``[0-9.]+``."""
    text = f"{weight:.{_WEIGHT_DECIMALS}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _sampler(scheduler: Any) -> dict[str, object]:
    name = _SAMPLERS.get(type(scheduler).__name__)
    if name is None:
        return {}
    config = getattr(scheduler, "config", {})
    get = config.get if isinstance(config, dict) else lambda k, d=None: getattr(config, k, d)
    if name == "DPM++ 2M":
        name = "DPM++ 2M SDE" if "sde" in str(get("algorithm_type", "")) else "DPM++ 2M"
    out: dict[str, object] = {"sampler": name}
    schedule = next((label for option, label in _SCHEDULES if get(option, False)), None)
    if schedule:
        out["schedule_type"] = schedule
    return out


def _model_name(pipe: Any) -> str | None:
    path = getattr(pipe, "name_or_path", None)
    if not isinstance(path, str) or not path.strip():
        return None
    return path.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1] or None


def _ref(use: Attributed) -> str:
    """``namespace/name@version``, else the SHA-256 prefix (a local path is private, may hold ``,`` ``:``)."""
    ref = f"{use.name}@{use.version}" if use.name and use.version else use.ref
    return ref if _REGISTRY_REF.fullmatch(ref) else f"sha256-{use.sha256[:AUTOV3_SHORT_HEX]}"


def _key(key: str) -> str:
    return _KEYS.get(key, key.replace("_", " ").capitalize())


def _value(value: object) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    text = " ".join(text.split())  # one line: the settings line must stay the last line
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:"') else text


def _defuse(text: str) -> str:
    """Indent prompt lines that would read as a settings line (``Steps: ``) to Civitai's parser."""
    return _SETTINGS_START.sub(r"\1 \2", text)
