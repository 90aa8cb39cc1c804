"""A re-packaged adapter is still the same adapter; an unrelated one is not (issue #12's evasion list).

Each story writes a trained-like adapter (``tests/support/fingerprint_variants.py``) in its trainer's real
layout, applies one evasion, writes the copy as a new file (new bytes, new hashes) and checks the exact weight
score of ``lorareg compare`` (≥ 0.9 for copies, ≤ 0.3 for unrelated adapters of the same base and layout)
and that the stored sketch's estimate agrees with it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import tests.support.fingerprint_variants as v
from lorareg.adapter.fingerprint import compare_files, compare_fingerprints, fingerprint_file
from lorareg.adapter.hashing import hash_file

SAME = 0.9
UNRELATED = 0.3
SKETCH_TOLERANCE = 0.05


Evasion = Callable[[v.Adapter, v.Adapter], tuple[v.Adapter, dict[str, object]]]
EVASIONS: dict[str, Evasion] = {  # name -> (original, unrelated) -> (the copy's factors, write options)
    "renamed-kohya-to-peft": lambda a, o: (a, {"fmt": "peft"}),
    "renamed-kohya-to-diffusers": lambda a, o: (a, {"fmt": "diffusers"}),
    "cast-to-f16": lambda a, o: (a, {"dtype": "F16"}),
    "cast-to-bf16": lambda a, o: (a, {"dtype": "BF16"}),
    "cast-to-f32": lambda a, o: (a, {"dtype": "F32", "alpha": 1.0}),
    "alpha-changed-factors-rescaled": lambda a, o: (a, {"alpha": 32.0}),
    "factors-rotated": lambda a, o: (v.rotated(a), {}),
    "svd-truncated-to-half-rank": lambda a, o: (v.svd_truncated(a), {}),
    "20-percent-of-modules-dropped": lambda a, o: (v.dropped(a), {}),
    "concat-merged-80-20": lambda a, o: (v.merged(a, o), {}),
    "trained-further": lambda a, o: (v.trained_further(a), {}),
}
BASES = ["sd1", "sdxl", "flux1"]


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, v.Adapter, v.Adapter]]:
    """Per base: the original file (kohya, F16, alpha 1), its factors, and an unrelated adapter's factors."""
    root = tmp_path_factory.mktemp("originals")
    out = {}
    for base in BASES:
        mods = v.layout(base)
        a, other = v.trained(mods, seed=0), v.trained(mods, seed=99)
        out[base] = (v.write(root / f"{base}.safetensors", a, base=base, dtype="F16", alpha=1.0), a, other)
    return out


def _check_same(original: Path, copy: Path) -> None:
    assert hash_file(original).sha256 != hash_file(copy).sha256
    exact = compare_files(original, copy)
    assert exact.similarity >= SAME, exact
    assert exact.coverage >= 0.5, exact
    sketched = compare_fingerprints(fingerprint_file(original), fingerprint_file(copy))
    assert sketched.similarity == pytest.approx(exact.similarity, abs=SKETCH_TOLERANCE)


@pytest.mark.parametrize("evasion", list(EVASIONS))
@pytest.mark.parametrize("base", BASES)
def test_repackaged_copy_is_recognised(
    base: str, evasion: str, originals: dict[str, tuple[Path, v.Adapter, v.Adapter]], tmp_path: Path
) -> None:
    original, a, other = originals[base]
    factors, options = EVASIONS[evasion](a, other)
    copy = v.write(tmp_path / "copy.safetensors", factors, base=base, **options)  # type: ignore[arg-type]
    _check_same(original, copy)


@pytest.mark.parametrize("base", BASES)
def test_unrelated_adapter_on_same_layout_is_not_similar(
    base: str, originals: dict[str, tuple[Path, v.Adapter, v.Adapter]], tmp_path: Path
) -> None:
    original, _, other = originals[base]
    for fmt in ("kohya", "peft"):
        unrelated = v.write(tmp_path / f"u-{fmt}.safetensors", other, base=base, fmt=fmt)
        result = compare_files(original, unrelated)
        assert result.family_a == result.family_b == base
        assert result.coverage == pytest.approx(1.0)
        assert abs(result.similarity) <= UNRELATED, result


LYCORIS_EVASIONS: dict[str, Callable[[v.Adapter], tuple[v.Adapter, dict[str, object]]]] = {
    "renamed-to-dotted-paths": lambda a: (a, {"fmt": "dotted"}),
    "cast-to-f16": lambda a: (a, {"dtype": "F16"}),
    "cast-to-bf16": lambda a: (a, {"dtype": "BF16"}),
    "alpha-changed-factors-rescaled": lambda a: (a, {"alpha": 16.0}),
    "factors-rotated": lambda a: (v.rotated(a), {}),
    "20-percent-of-modules-dropped": lambda a: (v.dropped(a), {}),
    "trained-further": lambda a: (v.trained_further(a), {}),
}


@pytest.mark.parametrize("evasion", list(LYCORIS_EVASIONS))
@pytest.mark.parametrize("kind", ["loha", "lokr"])
def test_repackaged_lycoris_copy_is_recognised(kind: str, evasion: str, tmp_path: Path) -> None:
    mods = [m for m in v.layout("sdxl") if m.component == "unet"]
    a = v.trained(mods, kind=kind, rank=4, seed=0)
    original = v.write(tmp_path / "orig.safetensors", a, base="sdxl", alpha=1.0)
    factors, options = LYCORIS_EVASIONS[evasion](a)
    copy = v.write(tmp_path / "copy.safetensors", factors, base="sdxl", **options)  # type: ignore[arg-type]
    _check_same(original, copy)
    unrelated = v.write(tmp_path / "u.safetensors", v.trained(mods, kind=kind, rank=4, seed=5), base="sdxl")
    assert abs(compare_files(original, unrelated).similarity) <= UNRELATED
