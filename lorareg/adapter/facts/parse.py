"""Group a header's tensors into adapted modules and read each module's rank and layer shape.

Every trainer names a module's tensors ``<module key><suffix>`` (``.lora_down.weight``, ``.lora_A.weight``,
``.hada_w1_a``, ``.lokr_w2_b``, ``.alpha``...; ``LORA_FORMATS.md`` §2). Stripping the suffix gives the module
key; the shapes give the rank and the adapted layer's ``in``/``out`` features (and conv kernel), which is
what family detection needs. This module neither names families nor maps names to dotted paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lorareg.adapter.safetensors import TensorInfo

# Roles by the name's last segment (LyCORIS, alpha, DoRA) ...
_LAST_SEGMENT_ROLES = {
    "alpha": "alpha",
    "dora_scale": "dora",
    "lora_magnitude_vector": "dora",
    **{f"hada_{w}": f"hada_{w}" for w in ("w1_a", "w1_b", "w2_a", "w2_b", "t1", "t2")},
    **{f"lokr_{w}": f"lokr_{w}" for w in ("w1", "w1_a", "w1_b", "w2", "w2_a", "w2_b", "t2")},
}
# ... and, for ``<module>.<segment>.weight``, by the segment before ``weight`` (kohya, PEFT).
_WEIGHT_SEGMENT_ROLES = {
    "lora_down": "down",
    "lora_up": "up",
    "lora_mid": "mid",
    "lora_A": "down",
    "lora_B": "up",
}
# ``<module>.<parent>.down.weight``: diffusers ``lora``/``lora_linear_layer`` parents name no layer.
_DIFFUSERS_PARENTS = ("lora", "lora_linear_layer")
# Key spellings that tell the format apart (the suffix alone does not: kohya and OneTrainer share it).
_DIFFUSERS_SUFFIXES = (".lora.down.weight", ".lora_linear_layer.down.weight", "_lora.down.weight")
_KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lora_te3_", "lora_prior_")


@dataclass(slots=True)
class AdaptedModule:
    """The tensors of one adapted layer, by role, and the facts their shapes give."""

    key: str
    parts: dict[str, TensorInfo] = field(default_factory=dict)
    rank: int | None = None
    in_features: int | None = None
    out_features: int | None = None
    kernel: tuple[int, ...] | None = None  # conv kernel (kh, kw); None for Linear or unknown

    @property
    def is_conv3x3(self) -> bool:
        return self.kernel is not None and max(self.kernel) > 1


def split_tensor_name(name: str) -> tuple[str, str] | None:
    """``(module key, role)`` for a tensor name with a known adapter suffix, else ``None``.

    Suffixes (``LORA_FORMATS.md`` §2): ``.lora_down.weight``/``.lora_up.weight`` (kohya), ``.lora_A.weight``/
    ``.lora_B.weight`` (PEFT), ``.lora.down.weight``/``.lora_linear_layer.down.weight`` (diffusers),
    ``.to_q_lora.down.weight`` (diffusers attention processors: module ``to_q``), ``.qkv_lora1.down.weight``
    (XLabs), ``.hada_*``/``.lokr_*`` (LyCORIS), ``.alpha``, ``.dora_scale``.
    """
    head, _, last = name.rpartition(".")
    if not head:
        return None
    role = _LAST_SEGMENT_ROLES.get(last)
    if role is not None:
        return head, role
    module, _, segment = head.rpartition(".")
    if not module or last not in ("weight", "bias"):
        return None
    if last == "bias":
        return (module, "bias") if segment == "lora_B" else None
    role = _WEIGHT_SEGMENT_ROLES.get(segment)
    if role is not None:
        return module, role
    if segment not in ("down", "up"):
        return None
    parent_path, _, parent = module.rpartition(".")
    if parent in _DIFFUSERS_PARENTS and parent_path:
        return parent_path, segment
    if parent.endswith("_lora") and parent != "_lora":
        layer = parent[: -len("_lora")]
        return (f"{parent_path}.{layer}" if parent_path else layer), segment
    return module, segment


def group_modules(tensors: Iterable[TensorInfo]) -> tuple[dict[str, AdaptedModule], list[str]]:
    """Group tensors by module key; return the modules (with shape facts filled) and unrecognised names."""
    modules: dict[str, AdaptedModule] = {}
    other: list[str] = []
    for info in tensors:
        split = split_tensor_name(info.name)
        if split is None:
            other.append(info.name)
            continue
        key, role = split
        modules.setdefault(key, AdaptedModule(key)).parts[role] = info
    for module in modules.values():
        _fill_shape_facts(module)
    return modules, other


def detect_format(names: Iterable[str], modules: Mapping[str, AdaptedModule]) -> str:
    """The key-naming format (``LORA_FORMATS.md`` §2), decided in order of the most specific evidence."""
    keys = list(modules)
    roles = {role for m in modules.values() for role in m.parts}
    names = list(names)
    if any(r.startswith(("hada_", "lokr_")) for r in roles) or any(k.startswith("lycoris_") for k in keys):
        return "lycoris"
    if any(k.startswith("lora_transformer_") for k in keys):
        return "onetrainer"
    if any(".processor.qkv_lora" in n or ".processor.proj_lora" in n for n in names):
        return "xlabs"
    if any(k.startswith(("diffusion_model.", "text_encoders.")) for k in keys):
        return "bfl"
    if any(n.endswith(_DIFFUSERS_SUFFIXES) for n in names):
        return "diffusers"
    if any(k.startswith(_KOHYA_PREFIXES) for k in keys) and "down" in roles:
        return "kohya"
    if any(n.endswith((".lora_A.weight", ".lora_B.weight")) for n in names):
        return "peft"
    return "unknown"


def detect_type(modules: Mapping[str, AdaptedModule]) -> str:
    """``lokr``/``loha`` by their tensors; ``locon`` when a low-rank module adapts a conv kernel > 1."""
    roles = {role for m in modules.values() for role in m.parts}
    if any(r.startswith("lokr_") for r in roles):
        return "lokr"
    if any(r.startswith("hada_") for r in roles):
        return "loha"
    if any(m.is_conv3x3 for m in modules.values()):
        return "locon"
    return "lora"


def _fill_shape_facts(m: AdaptedModule) -> None:
    p = m.parts
    if "down" in p:
        down = p["down"].shape
        m.rank = down[0] if down else None
        m.in_features = down[1] if len(down) >= 2 else None
        m.kernel = tuple(down[2:]) if len(down) == 4 else None
        if "up" in p and p["up"].shape:
            m.out_features = p["up"].shape[0]
    elif "hada_w1_b" in p:
        m.rank = _dim(p["hada_w1_b"], 0)
        m.in_features = _dim(p["hada_w1_b"], 1)
        m.out_features = _dim(p.get("hada_w1_a"), 0)
        t1 = p.get("hada_t1")
        m.kernel = tuple(t1.shape[2:]) if t1 is not None and len(t1.shape) == 4 else None
    elif "lokr_w1" in p or "lokr_w1_a" in p:
        _fill_lokr(m)


def _fill_lokr(m: AdaptedModule) -> None:
    """LoKr: layer = kron(w1, w2); rank is the inner dim of a decomposed w2 (or w1), none if both full."""
    p = m.parts
    w1_out = _dim(p.get("lokr_w1"), 0) or _dim(p.get("lokr_w1_a"), 0)
    w1_in = _dim(p.get("lokr_w1"), 1) or _dim(p.get("lokr_w1_b"), 1)
    w2_out = _dim(p.get("lokr_w2"), 0) or _dim(p.get("lokr_w2_a"), 0)
    w2_in = _dim(p.get("lokr_w2"), 1) or _dim(p.get("lokr_w2_b"), 1)
    if w1_out and w2_out:
        m.out_features = w1_out * w2_out
    if w1_in and w2_in:
        m.in_features = w1_in * w2_in
    m.rank = _dim(p.get("lokr_w2_a"), 1) or _dim(p.get("lokr_w1_a"), 1)
    w2 = p.get("lokr_w2") or p.get("lokr_w2_b")
    m.kernel = tuple(w2.shape[2:]) if w2 is not None and len(w2.shape) == 4 else None


def _dim(info: TensorInfo | None, axis: int) -> int | None:
    if info is None or len(info.shape) <= axis:
        return None
    return info.shape[axis]
