"""Weight fingerprints: recognise an adapter by what it does to the base model's weights, not by its bytes.

Re-saving in another dtype, renaming keys (kohya, PEFT, diffusers, BFL), moving the scale between ``alpha``
and the factors, rotating or truncating the rank, pruning modules, merging or training a little further all
change every file hash; they barely change ΔW. The parts:

- ``tensors``: one tensor's values from a file by range (numpy; BF16/F8 by bit manipulation);
- ``modules``: every format's module names -> the base model's canonical matrices (FLUX slices placed);
- ``delta``: each module's ΔW as factored pieces (LoRA, LoCon, LoHa, LoKr, full diff), scale folded in;
- ``score``: exact factored inner products -> similarity, coverage, scale (``lorareg compare``);
- ``sketch``: seeded k x k sketches per module and a pooled vector with LSH band keys (the registry).

Deliberately not here: any database or HTTP (``lorareg.registry.fingerprints`` stores and searches them).
"""

from __future__ import annotations

import os

from lorareg.adapter.fingerprint.delta import Adapter, open_adapter
from lorareg.adapter.fingerprint.score import Comparison, compare_adapters
from lorareg.adapter.fingerprint.sketch import Fingerprint, compare_fingerprints, fingerprint, pooled_cosine
from lorareg.adapter.fingerprint.tensors import TensorFile

__all__ = [
    "Adapter",
    "Comparison",
    "Fingerprint",
    "TensorFile",
    "compare_adapters",
    "compare_files",
    "compare_fingerprints",
    "fingerprint",
    "fingerprint_file",
    "open_adapter",
    "pooled_cosine",
]


def compare_files(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> Comparison:
    """Exact weight-level comparison of two adapter files (``lorareg compare``).

    Raises:
        NotFoundError: a file does not exist.
        InputError: a file is not a valid safetensors adapter.
    """
    with TensorFile(a) as fa, TensorFile(b) as fb:
        return compare_adapters(open_adapter(fa.header, fa.read), open_adapter(fb.header, fb.read))


def fingerprint_file(path: str | os.PathLike[str]) -> Fingerprint:
    """The fingerprint of an adapter file, read one module at a time."""
    with TensorFile(path) as f:
        return fingerprint(open_adapter(f.header, f.read))
