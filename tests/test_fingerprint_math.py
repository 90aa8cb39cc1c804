"""The factored scores equal what the materialised ΔW says, for every module kind and dtype.

The fingerprint never builds ΔW; these stories build it in the test (numpy, small real shapes) and check
that the energies, inner products and dtype decoding agree, that unreadable modules are skipped with a note
instead of poisoning the score, and that the stored form round-trips and stays small for a full SDXL file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tests.support.fingerprint_variants as v
from lorareg.adapter.fingerprint import Fingerprint, TensorFile, compare_files, fingerprint_file, open_adapter
from lorareg.adapter.fingerprint.score import module_inner
from lorareg.adapter.fingerprint.sketch import SKETCH_K, _projection
from lorareg.adapter.fingerprint.tensors import decode, reduce_tensor
from lorareg.errors import InputError
from tests.support.lora_factory import write_adapter
from tests.support.lora_layouts import Module
from tests.support.safetensors_builders import entry, safetensors_bytes

SMALL = [
    Module("unet", "down_blocks.0.attentions.0.proj_in", 40, 48, (1, 1)),
    Module("unet", "down_blocks.0.resnets.0.conv1", 8, 12, (3, 3)),
    Module("unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k", 768, 320),
]


def _dense(f: v.Factors) -> np.ndarray:
    if isinstance(f, v.LowRank):
        return f.up.astype(np.float64) @ f.down
    if isinstance(f, v.Hadamard):
        return (f.w1a.astype(np.float64) @ f.w1b) * (f.w2a.astype(np.float64) @ f.w2b)
    return np.kron(f.w1.astype(np.float64), f.w2a.astype(np.float64) @ f.w2b)


@pytest.mark.parametrize("kind", ["lora", "loha", "lokr"])
def test_factored_energy_and_inner_product_equal_the_materialised_delta(kind: str, tmp_path: Path) -> None:
    mods = SMALL if kind != "lokr" else SMALL[2:]
    a, b = v.trained(mods, kind=kind, rank=3, seed=1), v.trained(mods, kind=kind, rank=3, seed=2)
    fa = v.write(tmp_path / "a.safetensors", a, base="sd1", alpha=2.0)
    fb = v.write(tmp_path / "b.safetensors", b, base="sd1", alpha=5.0)
    expected_energy = sum(float(np.sum(_dense(f) ** 2)) for f in a.values())
    with TensorFile(fa) as f:
        adapter = open_adapter(f.header, f.read)
        energy = sum(module_inner(p, p) for _, p in adapter.iter_pieces())
    assert energy == pytest.approx(expected_energy, rel=1e-4)
    assert float(fingerprint_file(fa).energies.sum()) == pytest.approx(expected_energy, rel=0.5)
    dense_a = np.concatenate([_dense(f).ravel() for f in a.values()])
    dense_b = np.concatenate([_dense(f).ravel() for f in b.values()])
    cosine = dense_a @ dense_b / np.linalg.norm(dense_a) / np.linalg.norm(dense_b)
    assert compare_files(fa, fb).similarity == pytest.approx(cosine, abs=1e-4)


def test_bf16_and_f8_are_decoded_by_their_bit_layouts() -> None:
    assert decode(b"\x80\x3f\x00\xc0", "BF16").tolist() == [1.0, -2.0]
    assert decode(bytes([0x38, 0x7E, 0x01, 0xB8]), "F8_E4M3").tolist() == [1.0, 448.0, 2.0**-9, -1.0]
    assert np.isnan(decode(b"\x7f", "F8_E4M3")[0])
    assert decode(bytes([0x3C, 0xC0]), "F8_E5M2").tolist() == [1.0, -2.0]


def test_f16_is_decoded_exactly_for_every_bit_pattern() -> None:
    """The shift-and-rescale F16 path matches numpy's own cast on all 65,536 patterns, subnormals included."""
    bits = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    expected = bits.view(np.float16).astype(np.float32)
    got = decode(bits.tobytes(), "F16")
    assert np.array_equal(got, expected, equal_nan=True)
    finite = np.isfinite(expected)
    assert np.array_equal(got.view(np.uint32)[finite], expected.view(np.uint32)[finite])  # -0.0 stays -0.0


@pytest.mark.parametrize("dtype", ["F16", "BF16", "F32", "F8_E4M3"])
@pytest.mark.parametrize("shape", [(3000, 40), (24, 4100), (16, 8, 3, 3)], ids=["tall", "wide", "conv"])
def test_streamed_reduction_equals_the_product_of_the_decoded_tensor(
    dtype: str, shape: tuple[int, ...], tmp_path: Path
) -> None:
    """``reduce_tensor`` reads blocks of rows (several blocks here) and gives the same ``Lᵀ M`` / ``M R``."""
    rng = np.random.default_rng(7)
    count = int(np.prod(shape))
    raw = {
        "F16": lambda: (rng.standard_normal(count) * 0.02).astype("<f2").tobytes(),
        "BF16": lambda: (rng.standard_normal(count).astype("<f4").view("<u4") >> 16).astype("<u2").tobytes(),
        "F32": lambda: (rng.standard_normal(count) * 0.02).astype("<f4").tobytes(),
        "F8_E4M3": lambda: rng.integers(0, 0x7E, count, dtype=np.uint8).tobytes(),
    }[dtype]()
    path = tmp_path / "t.safetensors"
    path.write_bytes(safetensors_bytes({"m": entry(dtype, list(shape), 0, len(raw))}, raw))
    matrix = decode(raw, dtype).reshape(shape[0], -1).astype(np.float64)
    left = rng.choice([-1.0, 1.0], (matrix.shape[0], 8)).astype(np.float32)
    right = rng.choice([-1.0, 1.0], (matrix.shape[1], 8)).astype(np.float32)
    with TensorFile(path) as f:
        info = f.header.tensors["m"]
        by_left = reduce_tensor(f.read, f.header, info, left, side="left")
        by_right = reduce_tensor(f.read, f.header, info, right, side="right")
    assert np.allclose(by_left, left.T @ matrix, rtol=1e-4, atol=1e-4)
    assert np.allclose(by_right, matrix @ right, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["lora", "loha", "lokr"])
def test_streamed_sketch_equals_the_sketch_of_the_decoded_factors(kind: str, tmp_path: Path) -> None:
    """The fast path (factors never decoded whole) computes exactly ``Ψᵀ (s·B A) Ω / k`` of the pieces."""
    mods = SMALL if kind != "lokr" else SMALL[2:]
    path = v.write(
        tmp_path / "a.safetensors", v.trained(mods, kind=kind, rank=3, seed=4), base="sd1", alpha=2.0
    )
    fp = fingerprint_file(path)
    with TensorFile(path) as f:
        pieces = dict(open_adapter(f.header, f.read).iter_pieces())
    assert fp.modules == tuple(sorted(pieces))
    for name, sketch in zip(fp.modules, fp.sketches, strict=True):
        expected = np.zeros((SKETCH_K, SKETCH_K))
        for p in pieces[name]:
            psi = _projection("rows", p.row, p.height, SKETCH_K).astype(np.float64)
            omega = _projection("cols", 0, p.width, SKETCH_K).astype(np.float64)
            delta = p.up.astype(np.float64) if p.down is None else p.up.astype(np.float64) @ p.down
            expected += psi.T @ delta @ omega * p.scale / SKETCH_K
        assert np.allclose(sketch, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def _two_module_file(tmp_path: Path, *, second_dtype: str, second: bytes) -> Path:
    """A kohya file whose first module is fine and whose second has ``second_dtype`` data."""
    good = np.ones((2, 4), np.float32).tobytes(), np.ones((4, 2), np.float32).tobytes()
    size = len(second) // 2
    header = {
        "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight": entry("F32", [2, 4], 0, 32),
        "lora_unet_mid_block_attentions_0_proj_in.lora_up.weight": entry("F32", [4, 2], 32, 64),
        "lora_unet_mid_block_attentions_0_proj_out.lora_down.weight": entry(
            second_dtype, [2, 4], 64, 64 + size
        ),
        "lora_unet_mid_block_attentions_0_proj_out.lora_up.weight": entry(
            second_dtype, [4, 2], 64 + size, 64 + 2 * size
        ),
    }
    path = tmp_path / "two.safetensors"
    path.write_bytes(safetensors_bytes(header, good[0] + good[1] + second))
    return path


@pytest.mark.parametrize(
    ("dtype", "data"),
    [
        ("F32", np.full(16, np.nan, np.float32).tobytes()),
        ("F32", np.full(16, np.inf, np.float32).tobytes()),
        ("F16", np.full(16, -np.inf, np.float16).tobytes()),
        ("BF16", np.full(16, 0x7FC0, np.uint16).tobytes()),
        ("I16", np.ones(16, np.int16).tobytes()),
    ],
    ids=["nan-factors", "infinite-factors", "infinite-f16", "nan-bf16", "integer-dtype"],
)
def test_unreadable_module_is_skipped_with_a_note(dtype: str, data: bytes, tmp_path: Path) -> None:
    path = _two_module_file(tmp_path, second_dtype=dtype, second=data)
    fp = fingerprint_file(path)
    assert len(fp.modules) == 1 and np.isfinite(fp.pooled).all()
    result = compare_files(path, path)
    assert result.similarity == pytest.approx(1.0)
    assert result.to_json()["note"] and "skipped" in result.to_json()["note"]


def test_stored_fingerprint_round_trips_and_malformed_bytes_are_refused(tmp_path: Path) -> None:
    path = v.write(tmp_path / "a.safetensors", v.trained(SMALL, seed=3), base="sd1")
    fp = fingerprint_file(path)
    back = Fingerprint.from_bytes(fp.to_bytes())
    assert back.modules == fp.modules and back.family == fp.family
    assert np.allclose(back.sketches, fp.sketches, rtol=1e-3) and np.array_equal(back.pooled, fp.pooled)
    assert back.band_keys() == fp.band_keys()
    for bad in (b"", b"\xff\xff\xff\xff{", fp.to_bytes()[:-8]):
        with pytest.raises(InputError):
            Fingerprint.from_bytes(bad)


def test_full_sdxl_fingerprint_is_a_few_hundred_kilobytes(tmp_path: Path) -> None:
    path = write_adapter(tmp_path / "full.safetensors", "sdxl-kohya", rank=2, blocks=None, text_encoder=True)
    fp = fingerprint_file(path)
    assert len(fp.modules) > 900
    assert len(fp.to_bytes()) < 400_000


def test_a_module_wider_than_any_base_model_layer_is_not_sketched(tmp_path) -> None:
    """A hostile factor of 16M rows costs no projection table (CPU and memory at publish stay bounded)."""
    import time

    from lorareg.adapter.fingerprint import fingerprint_file
    from lorareg.adapter.fingerprint.sketch import MAX_SKETCH_DIM
    from lorareg.demo.samples import write_large_adapter

    path = tmp_path / "wide.safetensors"
    write_large_adapter(path, size_bytes=64 * 2**20)  # one lora_up of ~4M x 8: wider than MAX_SKETCH_DIM
    started = time.perf_counter()
    fp = fingerprint_file(path)
    assert fp.modules == () and time.perf_counter() - started < 5
    assert MAX_SKETCH_DIM < 4_000_000
