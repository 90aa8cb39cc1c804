"""How many adapters may stack on one pipeline, and how strongly: warn by default, refuse by policy.

Stacking many LoRAs, or pushing one past weight 1.0, is the usual way images break (burned colours,
duplicated limbs); it is not a security problem, so by default the loader only warns with a
:class:`StackingWarning`. A studio that wants a hard rule sets ``max_adapters`` / ``max_weight`` in its
policy and the loader refuses instead. The limits themselves are the policy's
(``lorareg.signing.policy.Policy.check_stack``); this module turns its verdict into warnings. No torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class LoraregWarning(UserWarning):
    """Base of the warnings lorareg issues (filter them by this class)."""


class StackingWarning(LoraregWarning):
    """More adapters stacked, or a larger weight, than is usually safe for image quality."""


def stacking_problems(*, weights: Sequence[float], policy: Any) -> tuple[list[str], list[str]]:
    """Judge the stack the pipeline would hold: every adapter's weight, the new one last.

    Returns:
        ``(refusals, warnings)``: reasons to refuse (limits the policy sets), and advice (the defaults).
    """
    bad = [w for w in weights if not math.isfinite(w)]
    if bad:
        return [f"weight {bad[0]} is not a finite number"], []
    verdict = policy.check_stack(list(weights))
    return list(verdict.reasons), list(verdict.warnings)
