"""Family of a DiT adapter that touches only attention (or another part without family-specific names).

The diffusers SD3 and FLUX training scripts take ``--lora_layers attn.to_k,attn.to_q,...``: such an adapter
has ``transformer_blocks.N.attn.to_q`` and nothing else, the same names in SD3, SD3.5, FLUX.1 and FLUX.2.
What tells them apart is the hidden width (the in-features of the attention projections) and how many
blocks the model has:

======  =========================================  =================
width   model                                      blocks (double)
======  =========================================  =================
1536    SD3-medium, SD3.5-medium (64 x 24)          24
2432    SD3.5-large (64 x 38)                       38
3072    FLUX.1 dev/schnell; FLUX.2 klein-4B         19; 5
4096    FLUX.2 klein-9B                             8
6144    FLUX.2-dev                                  8
======  =========================================  =================

Any other width (AuraFlow's names, PixArt, Sana, Lumina, tiny test models) is ``unknown``: guessing would turn
a wrong guess into a refusal on the right pipeline. At 3072 with no block index past klein-4B's five double
blocks, FLUX.1 and FLUX.2 klein-4B cannot be told apart from the tensors: the result is ``flux1`` with
``flux2`` as an alternative, and the loader lets the pipeline's structure decide. Not here: full layouts
with family-specific names (``family.py`` decides those first).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

KLEIN4B_BLOCKS = (5, 20)  # FLUX.2 klein-4B: 5 double, 20 single blocks (FLUX.1: 19, 38) at the same width
FLUX1_WIDTH = 3072
KLEIN4B_SAME = "FLUX.2 klein-4B has the same layers here"  # marks the one pair the tensors cannot separate
_TOP_LEVEL_DIT = re.compile(r"^(transformer_blocks|single_transformer_blocks)_(\d+)_")
_ATTENTION = re.compile(r"_attn2?_(to_q|to_k|to_v|to_out_0|to_out)$")
_KLEIN_UNDECIDED = "the tensors cannot tell them apart; the pipeline's structure decides at load time"
_AURAFLOW = re.compile(r"(^|_)joint_transformer_blocks_\d+_")


@dataclass(frozen=True, slots=True)
class _Width:
    family: str
    model: str
    double_blocks: int


_WIDTHS = {
    1536: _Width("sd3", "SD3-medium / SD3.5-medium (hidden 64 x 24)", 24),
    2432: _Width("sd3", "SD3.5-large (hidden 64 x 38)", 38),
    3072: _Width("flux1", "FLUX.1 (19 double blocks)", 19),
    4096: _Width("flux2", "FLUX.2 klein-9B", 8),
    6144: _Width("flux2", "FLUX.2-dev", 8),
}


class LayerLike(Protocol):
    """The part of ``family.Layer`` this module reads."""

    @property
    def component(self) -> str: ...
    @property
    def flat(self) -> str: ...
    @property
    def in_features(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class DitGuess:
    """A family decided from width and block count, and the reason sentence for the notes."""

    family: str
    reason: str


def partial_dit_family(layers: Sequence[LayerLike]) -> DitGuess | None:
    """Decide a DiT adapter whose names are shared by every DiT family; ``None`` if it is not a DiT.

    DiT evidence is structural: ``transformer_blocks`` at the top level of the denoiser (a UNet nests them
    under ``attentions``), or a ``transformer`` component. Widths come from the attention projections.
    """
    dit = [x for x in layers if x.component == "transformer" or _TOP_LEVEL_DIT.match(x.flat)]
    if not dit:
        return None
    if any(_AURAFLOW.search(x.flat) for x in dit):
        return DitGuess("unknown", "family unknown: joint_transformer_blocks names (AuraFlow), not supported")
    width = _most_common(x.in_features for x in dit if _ATTENTION.search(x.flat) and "attn2" not in x.flat)
    if width is None:
        width = _most_common(x.in_features for x in dit)
    known = _WIDTHS.get(width) if width is not None else None
    if width is None or known is None:
        return DitGuess(
            "unknown", f"family unknown: DiT blocks of hidden {width}, which no supported model has"
        )
    return _by_blocks(dit, width, known)


def _by_blocks(dit: Sequence[LayerLike], width: int, known: _Width) -> DitGuess:
    double = _max_index(dit, "transformer_blocks")
    single = _max_index(dit, "single_transformer_blocks")
    seen = f"blocks up to {double}" + (f", single blocks up to {single}" if single >= 0 else "")
    if known.family == "sd3" and single >= 0:
        return DitGuess("unknown", f"family unknown: hidden {width} with single-stream blocks (SD3 has none)")
    if double >= known.double_blocks:
        return DitGuess(
            "unknown",
            f"family unknown: hidden {width} is {known.model}, but block {double} is past its "
            f"{known.double_blocks}",
        )
    reason = f"family {known.family}: attention of hidden {width} = {known.model}; {seen}"
    if width != FLUX1_WIDTH:
        return DitGuess(known.family, reason)
    if double < KLEIN4B_BLOCKS[0] and single < KLEIN4B_BLOCKS[1]:
        return DitGuess("flux1", f"{reason}; {KLEIN4B_SAME} ({_KLEIN_UNDECIDED})")
    return DitGuess(
        "flux1", f"{reason}; block index past FLUX.2 klein-4B's {KLEIN4B_BLOCKS[0]}/{KLEIN4B_BLOCKS[1]}"
    )


def _max_index(layers: Sequence[LayerLike], block: str) -> int:
    found = [
        int(m.group(2)) for x in layers for m in [_TOP_LEVEL_DIT.match(x.flat)] if m and m.group(1) == block
    ]
    return max(found, default=-1)


def _most_common(values: Iterable[int | None]) -> int | None:
    counts = Counter(v for v in values if v is not None)
    return max(counts, key=lambda v: (counts[v], v)) if counts else None
