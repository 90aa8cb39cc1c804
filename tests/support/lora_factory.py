"""Build LoRA adapter files with the real key names and real shapes of each base family and format.

Why: every part of lorareg that reads adapters (facts, signing, the registry, the loader, the web UI) must be
tested against what trainers really write, and nothing may be downloaded. The layouts (``lora_layouts.py``)
come from the model configs summarised in ``LORA_FORMATS.md`` §3 (channel plans, context widths, block
counts, MLP ratios); tensor names follow the trainers of §2 (kohya sd-scripts, diffusers/PEFT, LyCORIS,
ai-toolkit/BFL, XLabs, OneTrainer). Shapes are real; only the rank is tiny, so a module costs
``(in + out) * rank`` values.

Use::

    from tests.support.lora_factory import KINDS, write_adapter
    path = write_adapter(tmp_path / "a.safetensors", kind="sdxl-kohya", rank=2, blocks=2)

``blocks`` keeps the first N groups (one transformer/attention block, one text-encoder layer) of each
section while keeping every shape real; ``blocks=None`` writes the full layout (SD1 kohya: 192 UNet + 72 TE
modules; SDXL kohya: 722 UNet modules) - a few MB, use sparingly. ``EXPECTED[kind]`` holds what an honest
inspector must report. ``build_header`` gives the :class:`~lorareg.adapter.safetensors.SafetensorsHeader` and
the alpha scalars without touching the disk.

What this module deliberately does not do: produce numerically meaningful weights (values are small seeded
noise), or cover every trainer option (DoRA, Tucker, per-block ranks).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import save, save_file

from lorareg.adapter.safetensors import SafetensorsHeader, TensorInfo
from tests.support.lora_layouts import (
    Groups,
    Module,
    clip,
    clip_l,
    flux1_bfl,
    flux1_diffusers,
    flux2_bfl,
    flux2_diffusers,
    sd3,
    sd_resnets,
    sd_unet,
    sdxl_unet,
    xlabs,
)

_T = tuple[str, tuple[int, ...]]  # a tensor name and its shape


@dataclass(frozen=True)
class Expected:
    """What an honest inspector reports for a kind (with the default ``text_encoder``)."""

    family: str
    format: str
    type: str
    text_encoder: bool
    has_alpha: bool


# --------------------------------------------------------------------------- naming formats

_KOHYA_PREFIX = {
    "unet": "lora_unet",
    "transformer": "lora_unet",
    "text_encoder": "lora_te",
}
_KOHYA_PREFIX_DUAL = {
    "unet": "lora_unet",
    "transformer": "lora_unet",
    "text_encoder": "lora_te1",
    "text_encoder_2": "lora_te2",
}
_ONETRAINER_PREFIX = {
    "transformer": "lora_transformer",
    "text_encoder": "lora_te1",
    "text_encoder_2": "lora_te2",
}


def _low_rank(mod: Module, rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of the down (A) and up (B) matrices; conv down keeps the kernel, conv up is 1x1."""
    if mod.kernel is None:
        return (rank, mod.in_features), (mod.out_features, rank)
    return (rank, mod.in_features, *mod.kernel), (mod.out_features, rank, 1, 1)


def _kohya_names(prefixes: dict[str, str]) -> Callable[[Module], str]:
    return lambda m: f"{prefixes[m.component]}_{m.path.replace('.', '_')}"


def _emit_kohya(
    mods: Iterable[Module], name: Callable[[Module], str], rank: int, alpha: float | None
) -> list[_T]:
    out: list[_T] = []
    for m in mods:
        down, up = _low_rank(m, rank)
        key = name(m)
        out += [(f"{key}.lora_down.weight", down), (f"{key}.lora_up.weight", up)]
        if alpha is not None:
            out.append((f"{key}.alpha", ()))
    return out


def _emit_peft(mods: Iterable[Module], rank: int, prefix: Callable[[Module], str]) -> list[_T]:
    out: list[_T] = []
    for m in mods:
        down, up = _low_rank(m, rank)
        out += [(f"{prefix(m)}{m.path}.lora_A.weight", down), (f"{prefix(m)}{m.path}.lora_B.weight", up)]
    return out


def _emit_diffusers(mods: Iterable[Module], rank: int) -> list[_T]:
    """Names of diffusers ``convert_state_dict_to_diffusers``: ``lora.down`` (UNet), ``lora_linear_layer``."""
    out: list[_T] = []
    for m in mods:
        down, up = _low_rank(m, rank)
        mid = "lora" if m.component == "unet" else "lora_linear_layer"
        out += [
            (f"{m.component}.{m.path}.{mid}.down.weight", down),
            (f"{m.component}.{m.path}.{mid}.up.weight", up),
        ]
    return out


def _emit_xlabs(mods: Iterable[Module], rank: int) -> list[_T]:
    out: list[_T] = []
    for m in mods:
        down, up = _low_rank(m, rank)
        out += [(f"{m.path}.down.weight", down), (f"{m.path}.up.weight", up)]
    return out


def _emit_loha(mods: Iterable[Module], name: Callable[[Module], str], rank: int) -> list[_T]:
    out: list[_T] = []
    for m in mods:
        key = name(m)
        for w in ("w1", "w2"):
            out += [
                (f"{key}.hada_{w}_a", (m.out_features, rank)),
                (f"{key}.hada_{w}_b", (rank, m.in_features)),
            ]
        out.append((f"{key}.alpha", ()))
    return out


def factorization(dim: int, factor: int = -1) -> tuple[int, int]:
    """LyCORIS's split of ``dim`` into ``(m, n)``, ``m <= n``, ``m * n == dim``, m as close to sqrt as
    divisors allow (``factor=-1``) or equal to ``factor`` when it divides ``dim``."""
    if factor > 0 and dim % factor == 0:
        m, n = factor, dim // factor
        return (m, n) if m <= n else (n, m)
    m = max(d for d in range(1, int(dim**0.5) + 1) if dim % d == 0)
    return m, dim // m


def _emit_lokr(mods: Iterable[Module], name: Callable[[Module], str], rank: int) -> list[_T]:
    """LoKr: full ``lokr_w1 [out_l, in_m]`` and, when the rank is small enough, ``lokr_w2_a/b``."""
    out: list[_T] = []
    for m in mods:
        key = name(m)
        out_l, out_k = factorization(m.out_features)
        in_m, in_n = factorization(m.in_features)
        out.append((f"{key}.lokr_w1", (out_l, in_m)))
        if rank < max(out_k, in_n) / 2:
            out += [(f"{key}.lokr_w2_a", (out_k, rank)), (f"{key}.lokr_w2_b", (rank, in_n))]
        else:
            out.append((f"{key}.lokr_w2", (out_k, in_n)))
        out.append((f"{key}.alpha", ()))
    return out


# --------------------------------------------------------------------------- kinds


@dataclass(frozen=True)
class _Kind:
    expected: Expected
    sections: Callable[[bool], list[Groups]]  # text_encoder -> sections of groups
    emit: Callable[[list[Module], int, float | None], list[_T]]


def _take(sections: list[Groups], blocks: int | None) -> list[Module]:
    return [m for groups in sections for g in (groups if blocks is None else groups[:blocks]) for m in g]


def _kohya(prefixes: dict[str, str]) -> Callable[[list[Module], int, float | None], list[_T]]:
    return lambda mods, rank, alpha: _emit_kohya(mods, _kohya_names(prefixes), rank, alpha)


def _peft_component(mods: list[Module], rank: int, alpha: float | None) -> list[_T]:
    return _emit_peft(mods, rank, lambda m: f"{m.component}.")


def _bfl(mods: list[Module], rank: int, alpha: float | None) -> list[_T]:
    return _emit_peft(mods, rank, lambda m: "diffusion_model.")


def _te(te: bool, *groups: Groups) -> list[Groups]:
    return list(groups) if te else []


def _sd1(te: bool) -> list[Groups]:
    return [sd_unet(ctx=768, conv_proj=True), *_te(te, clip_l())]


def _sd2(te: bool) -> list[Groups]:
    return [
        sd_unet(ctx=1024, conv_proj=False),
        *_te(te, clip("text_encoder", hidden=1024, layers=23, mlp=4096)),
    ]


def _sdxl(te: bool, *, sgm: bool) -> list[Groups]:
    te2 = clip("text_encoder_2", hidden=1280, layers=32, mlp=5120)
    return [sdxl_unet(sgm_names=sgm), *_te(te, clip_l(), te2)]


def _e(family: str, fmt: str, typ: str, te: bool, alpha: bool) -> Expected:
    return Expected(family=family, format=fmt, type=typ, text_encoder=te, has_alpha=alpha)


_KINDS: dict[str, _Kind] = {
    "sd1-kohya": _Kind(_e("sd1", "kohya", "lora", True, True), _sd1, _kohya(_KOHYA_PREFIX)),
    "sd1-locon": _Kind(
        _e("sd1", "kohya", "locon", True, True), lambda te: [*_sd1(te), sd_resnets()], _kohya(_KOHYA_PREFIX)
    ),
    "sd1-peft": _Kind(_e("sd1", "peft", "lora", True, False), _sd1, _peft_component),
    "sd1-diffusers": _Kind(
        _e("sd1", "diffusers", "lora", True, False), _sd1, lambda m, r, a: _emit_diffusers(m, r)
    ),
    "sd2-kohya": _Kind(_e("sd2", "kohya", "lora", True, True), _sd2, _kohya(_KOHYA_PREFIX)),
    "sdxl-kohya": _Kind(
        _e("sdxl", "kohya", "lora", True, True), lambda te: _sdxl(te, sgm=True), _kohya(_KOHYA_PREFIX_DUAL)
    ),
    "sdxl-diffusers": _Kind(
        _e("sdxl", "diffusers", "lora", True, False),
        lambda te: _sdxl(te, sgm=False),
        lambda m, r, a: _emit_diffusers(m, r),
    ),
    "sdxl-peft": _Kind(
        _e("sdxl", "peft", "lora", False, False), lambda te: _sdxl(te, sgm=False), _peft_component
    ),
    "sdxl-lokr": _Kind(
        _e("sdxl", "lycoris", "lokr", False, True),
        lambda te: _sdxl(te, sgm=True),
        lambda m, r, a: _emit_lokr(m, _kohya_names(_KOHYA_PREFIX_DUAL), r),
    ),
    "sdxl-loha": _Kind(
        _e("sdxl", "lycoris", "loha", False, True),
        lambda te: _sdxl(te, sgm=True),
        lambda m, r, a: _emit_loha(m, _kohya_names(_KOHYA_PREFIX_DUAL), r),
    ),
    "sd35-large-peft": _Kind(
        _e("sd3", "peft", "lora", False, False), lambda te: [sd3(layers=38)], _peft_component
    ),
    "sd35-medium-peft": _Kind(
        _e("sd3", "peft", "lora", False, False), lambda te: [sd3(layers=24)], _peft_component
    ),
    "flux1-peft": _Kind(
        _e("flux1", "peft", "lora", False, False), lambda te: [*flux1_diffusers()], _peft_component
    ),
    "flux1-kohya": _Kind(
        _e("flux1", "kohya", "lora", False, True),
        lambda te: [*flux1_bfl(), *_te(te, clip_l())],
        _kohya({"transformer": "lora_unet", "text_encoder": "lora_te1"}),
    ),
    "flux1-bfl": _Kind(_e("flux1", "bfl", "lora", False, False), lambda te: [*flux1_bfl()], _bfl),
    "flux1-xlabs": _Kind(
        _e("flux1", "xlabs", "lora", False, False), lambda te: [xlabs()], lambda m, r, a: _emit_xlabs(m, r)
    ),
    "flux1-onetrainer": _Kind(
        _e("flux1", "onetrainer", "lora", True, True),
        lambda te: [*flux1_diffusers(), *_te(te, clip_l())],
        _kohya(_ONETRAINER_PREFIX),
    ),
    "flux2-klein4b-peft": _Kind(
        _e("flux2", "peft", "lora", False, False), lambda te: [*flux2_diffusers("4b")], _peft_component
    ),
    "flux2-klein9b-peft": _Kind(
        _e("flux2", "peft", "lora", False, False), lambda te: [*flux2_diffusers("9b")], _peft_component
    ),
    "flux2-klein4b-bfl": _Kind(_e("flux2", "bfl", "lora", False, False), lambda te: [*flux2_bfl("4b")], _bfl),
    "flux2-klein9b-bfl": _Kind(_e("flux2", "bfl", "lora", False, False), lambda te: [*flux2_bfl("9b")], _bfl),
}

KINDS: tuple[str, ...] = tuple(_KINDS)
"""Every kind the factory builds, ``<family>-<format>`` (``sd1-kohya``, ``flux2-klein4b-bfl``, ...)."""

EXPECTED: dict[str, Expected] = {k: v.expected for k, v in _KINDS.items()}
"""What an honest inspector reports for each kind with default options."""

DEFAULT_ALPHA = 1.0  # kohya's common ``--network_alpha 1``; deliberately not equal to the default rank


def modules(kind: str, *, blocks: int | None = 2, text_encoder: bool | None = None) -> list[Module]:
    """The base-model layers a ``kind`` adapter targets (first ``blocks`` groups of each section)."""
    spec = _KINDS[kind]
    te = spec.expected.text_encoder if text_encoder is None else text_encoder
    return _take(spec.sections(te), blocks)


def tensor_shapes(
    kind: str,
    *,
    rank: int = 2,
    blocks: int | None = 2,
    text_encoder: bool | None = None,
    alpha: float | None = None,
) -> tuple[list[_T], float | None]:
    """Tensor names and shapes of a ``kind`` adapter, and the alpha value its ``.alpha`` scalars hold."""
    spec = _KINDS[kind]
    value = (DEFAULT_ALPHA if alpha is None else alpha) if spec.expected.has_alpha else None
    mods = modules(kind, blocks=blocks, text_encoder=text_encoder)
    return spec.emit(mods, rank, value), value


def build_tensors(
    kind: str,
    *,
    rank: int = 2,
    blocks: int | None = 2,
    text_encoder: bool | None = None,
    alpha: float | None = None,
    seed: int = 0,
    dtype: str = "float16",
) -> dict[str, np.ndarray]:
    """Seeded tensors for a ``kind`` adapter; ``.alpha`` scalars hold ``alpha`` (default 1.0)."""
    shapes, value = tensor_shapes(kind, rank=rank, blocks=blocks, text_encoder=text_encoder, alpha=alpha)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes:
        if name.endswith(".alpha"):
            out[name] = np.array(value, dtype=dtype)
        else:
            out[name] = (rng.standard_normal(shape, dtype=np.float32) * 0.01).astype(dtype)
    return out


def write_adapter(
    path: str | Path,
    kind: str = "sdxl-kohya",
    *,
    rank: int = 2,
    blocks: int | None = 2,
    metadata: dict[str, str] | None = None,
    seed: int = 0,
    alpha: float | None = None,
    text_encoder: bool | None = None,
    dtype: str = "float16",
) -> Path:
    """Write a ``kind`` adapter to ``path`` (parent directories created) and return the path.

    Args:
        kind: one of :data:`KINDS`.
        rank: LoRA rank of every module (keep it 1-2: files stay small while shapes stay real).
        blocks: first N groups of each section; ``None`` for the full real layout.
        metadata: the ``__metadata__`` strings, written as given (they may lie: that is the point).
        seed: seeds the tensor values, so two seeds give two different digests.
        alpha: value of kohya/LyCORIS ``.alpha`` scalars (default 1.0); ignored by formats without them.
        text_encoder: include text-encoder modules (default per kind, see :data:`EXPECTED`).
        dtype: numpy dtype of all tensors (``float16`` or ``float32``).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = build_tensors(
        kind, rank=rank, blocks=blocks, text_encoder=text_encoder, alpha=alpha, seed=seed, dtype=dtype
    )
    save_file(tensors, str(target), metadata=metadata)
    return target


def adapter_bytes(kind: str = "sdxl-kohya", **options: object) -> bytes:
    """The bytes ``write_adapter`` would write (same keyword options except ``path``)."""
    metadata = options.pop("metadata", None)
    tensors = build_tensors(kind, **options)  # type: ignore[arg-type]
    return save(tensors, metadata=metadata)  # type: ignore[arg-type]


_DTYPE_TAG = {"float16": ("F16", 2), "float32": ("F32", 4)}


def build_header(
    kind: str,
    *,
    rank: int = 2,
    blocks: int | None = 2,
    metadata: dict[str, str] | None = None,
    text_encoder: bool | None = None,
    alpha: float | None = None,
    dtype: str = "float16",
) -> tuple[SafetensorsHeader, dict[str, float]]:
    """A header as the strict parser would return it for the same adapter, plus its alpha scalars, with no
    file at all (for fast facts tests)."""
    shapes, value = tensor_shapes(kind, rank=rank, blocks=blocks, text_encoder=text_encoder, alpha=alpha)
    scalars = {n: float(value) for n, s in shapes if n.endswith(".alpha") and value is not None}
    return header_from_shapes(shapes, metadata=metadata, dtype=dtype), scalars


def header_from_shapes(
    shapes: Iterable[tuple[str, tuple[int, ...]]],
    *,
    metadata: dict[str, str] | None = None,
    dtype: str = "float16",
) -> SafetensorsHeader:
    """A ``SafetensorsHeader`` for hand-written ``(name, shape)`` pairs: offsets contiguous in name order,
    ``header_size`` nominal. For layouts no kind covers (and hostile ones) without writing a file."""
    tag, size = _DTYPE_TAG[dtype]
    tensors: dict[str, TensorInfo] = {}
    offset = 0
    for name, shape in sorted(shapes):
        nbytes = int(np.prod(shape, dtype=np.int64)) * size
        tensors[name] = TensorInfo(
            name=name, dtype=tag, shape=tuple(shape), begin=offset, end=offset + nbytes
        )
        offset += nbytes
    header_size = len(json.dumps({n: 0 for n in tensors})) + 64 * len(tensors)
    file_size = 8 + header_size + offset
    return SafetensorsHeader(
        header_size=header_size, file_size=file_size, tensors=tensors, metadata=dict(metadata or {})
    )


def kohya_metadata(*, base: str, rank: int, alpha: float, module: str = "networks.lora") -> dict[str, str]:
    """The minimum metadata sd-scripts keeps with ``--no_metadata`` (values stringified as it does)."""
    return {
        "ss_base_model_version": base,
        "ss_v2": str(base.startswith("sd_v2")),
        "ss_network_module": module,
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(alpha),
        "ss_network_args": "None",
    }


def peft_metadata(*, component: str, rank: int, alpha: float) -> dict[str, str]:
    """diffusers ``lora_adapter_metadata``: ``<component>.<LoraConfig field>`` as indented sorted JSON."""
    cfg = {
        f"{component}.r": rank,
        f"{component}.lora_alpha": alpha,
        f"{component}.target_modules": ["to_q", "to_k"],
    }
    return {"format": "pt", "lora_adapter_metadata": json.dumps(cfg, indent=2, sort_keys=True)}
