"""Adapter facts: what a LoRA file shows about itself, computed from tensor names and shapes only.

``compute_facts(header, scalars)`` is pure (no I/O): the header comes from ``lorareg.adapter.safetensors``
and the scalars are the values of the 0-dim ``.alpha`` tensors. The parts:

- ``parse``: tensors -> adapted modules (rank, in/out features, conv kernel), format and type;
- ``names``: module keys of every trainer -> component and dotted module path;
- ``family``: base-model family from names and shapes, with a reason;
- ``claims``: metadata hints, and the metadata claims that the tensors contradict.

Deliberately not here: reading files, hashing (``lorareg.adapter.inspect`` adds hash claims), or believing
metadata.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from lorareg.adapter.facts.claims import metadata_claims, metadata_hints, peft_config
from lorareg.adapter.facts.family import Layer, detect_family, family_alternatives
from lorareg.adapter.facts.model import FAMILIES, FORMATS, TYPES, AdapterFacts, MetadataClaim
from lorareg.adapter.facts.names import DENOISER, flat, locate, sgm_to_diffusers
from lorareg.adapter.facts.parse import AdaptedModule, detect_format, detect_type, group_modules
from lorareg.adapter.safetensors import SafetensorsHeader

__all__ = ["FAMILIES", "FORMATS", "TYPES", "AdapterFacts", "MetadataClaim", "compute_facts"]

_DIT_FAMILIES = ("sd3", "flux1", "flux2")
_WEIGHT_ROLES = frozenset(
    {"down", "up", "hada_w1_a", "hada_w1_b", "lokr_w1", "lokr_w1_a", "lokr_w2", "lokr_w2_a"}
)
_SHOWN_NAME_CHARS = 80


def compute_facts(header: SafetensorsHeader, scalars: Mapping[str, float]) -> AdapterFacts:
    """Facts of an adapter from its validated header and its alpha scalar values.

    Args:
        header: the strict parser's result (names, dtypes, shapes, metadata).
        scalars: ``{tensor name: value}`` of 0-dim tensors (kohya/LyCORIS ``.alpha``); may be empty.

    Returns:
        The facts; metadata only appears as ``hints`` and contradicting ``claims``.
    """
    modules, unrecognised = group_modules(header.tensors.values())
    adapted = {k: m for k, m in modules.items() if _WEIGHT_ROLES & m.parts.keys()}
    located = {k: locate(k) for k in adapted}
    layers = [
        Layer(comp, flat(path), m.in_features, m.out_features, m.kernel)
        for k, m in adapted.items()
        for comp, path in [located[k]]
    ]
    family, notes = detect_family(layers, adapted)
    targets = sorted({_target(comp, path, family) for comp, path in located.values()})
    rank, ranks = _ranks(adapted)
    alpha, alpha_notes = _alpha(adapted, scalars, rank)
    notes += alpha_notes + _name_notes(unrecognised, located)
    declared = {k: v for k, v in peft_config(header.metadata).items() if k.endswith("lora_alpha")}
    if alpha is None and declared:
        notes.append(f"lora_adapter_metadata declares {declared} (untrusted hint; diffusers would use it)")
    if any(m.rank is None for m in adapted.values()) and rank is None:
        notes.append("no module has a low-rank factor (e.g. LoKr with full w1 and w2): rank is not defined")
    components = sorted({t.split(".", 1)[0] for t in targets})
    return AdapterFacts(
        family=family,
        alternatives=family_alternatives(family, notes),
        format=detect_format(header.tensors, modules),
        type=detect_type(adapted),
        rank=rank,
        ranks=ranks,
        alpha=alpha,
        targets=tuple(targets),
        text_encoder=any(c.startswith("text_encoder") for c in components),
        components=tuple(components),
        tensors=len(header.tensors),
        parameters=sum(math.prod(t.shape) for t in header.tensors.values()),
        dtypes=tuple(sorted({t.dtype for t in header.tensors.values()})),
        notes=tuple(notes),
        claims=tuple(metadata_claims(header.metadata, family=family, rank=rank, alpha=alpha)),
        hints=metadata_hints(header.metadata),
    )


def _target(component: str, path: str, family: str) -> str:
    if component == DENOISER:
        component = (
            "transformer" if family in _DIT_FAMILIES else "prior" if family == "wuerstchen" else "unet"
        )
    if family == "sdxl" and component == "unet":
        path = sgm_to_diffusers(path)
    return f"{component}.{path}"


def _ranks(modules: Mapping[str, AdaptedModule]) -> tuple[int | None, tuple[int, ...]]:
    counts = Counter(m.rank for m in modules.values() if m.rank is not None)
    if not counts:
        return None, ()
    return max(counts, key=lambda r: (counts[r], r)), tuple(sorted(counts))


def _alpha(
    modules: Mapping[str, AdaptedModule], scalars: Mapping[str, float], rank: int | None
) -> tuple[float | None, list[str]]:
    """Most common alpha among the modules' ``.alpha`` scalars; trainers treat a missing one as the rank."""
    found = [scalars.get(m.parts["alpha"].name) for m in modules.values() if "alpha" in m.parts]
    values = [v for v in found if v is not None]
    if not values:
        return None, ["no alpha tensors: trainers and diffusers then use alpha = rank (scale 1)"]
    notes = []
    finite = [float(v) for v in values if math.isfinite(v)]
    if len(finite) < len(values):
        notes.append(f"{len(values) - len(finite)} alpha scalars are not finite numbers (ignored)")
    if not finite:
        return None, notes
    counts = Counter(finite)
    alpha = max(counts, key=lambda a: (counts[a], a))
    if len(counts) > 1:
        notes.append(f"alpha differs per module: {', '.join(f'{a:g}' for a in sorted(counts))}")
    if alpha == 0:
        notes.append("alpha 0 means alpha = rank to kohya and LyCORIS")
    return alpha, notes


def _name_notes(unrecognised: list[str], located: Mapping[str, tuple[str, str]]) -> list[str]:
    notes = []
    if unrecognised:
        first = unrecognised[0][:_SHOWN_NAME_CHARS]
        notes.append(f"{len(unrecognised)} tensors are not adapter weights of a known kind (first: {first})")
    kept = sum(1 for _, path in located.values() if "." not in path)
    if kept:
        notes.append(f"{kept} module names could not be mapped to dotted paths and are kept as written")
    return notes
