"""Synthetic LoRA adapter files for the demo catalogue and the benchmarks, written as raw safetensors bytes.

Each family gets a handful of modules with the real kohya / diffusers key names and the shapes that
``LORA_FORMATS.md`` lists as that family's fingerprint (cross-attention context width, hidden size, fused
projections), at a tiny rank, so the files are a few hundred KiB and the registry's fact extraction sees a
believable adapter. Values are deterministic small half-precision numbers derived from a seed.

Deliberately independent of numpy/torch/safetensors (the demo must run on a core install) and of
``tests/`` (the test suite has its own, richer factory in ``tests/support/lora_factory.py``). These files are
structurally valid adapters, not trained ones: they are for catalogues and plumbing, not for images.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path

SAMPLE_FAMILIES = ("sd1", "sdxl", "sd3", "flux1", "flux2")
SAMPLE_NOTE = "random weights: a structurally valid sample made by lorareg, not a trained adapter"
_HEADER_ALIGN = 8  # safetensors pads the JSON header to a multiple of 8 bytes
_PATTERN_BYTES = 1 * 2**20  # block of fp16 values tiled through large tensors

# (module name, input width, output width, conv) — kohya naming for sd1/sdxl/flux1, diffusers for sd3/flux2.
_KOHYA_MODULES: dict[str, list[tuple[str, int, int, bool]]] = {
    "sd1": [
        ("lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320, True),
        ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", 320, 320, False),
        ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 768, 320, False),
        ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v", 768, 320, False),
        ("lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k", 768, 1280, False),
        ("lora_te_text_model_encoder_layers_0_self_attn_q_proj", 768, 768, False),
    ],
    "sdxl": [
        ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q", 640, 640, False),
        ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k", 2048, 640, False),
        ("lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_v", 2048, 640, False),
        ("lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k", 2048, 1280, False),
        ("lora_te1_text_model_encoder_layers_0_self_attn_q_proj", 768, 768, False),
        ("lora_te2_text_model_encoder_layers_0_self_attn_q_proj", 1280, 1280, False),
    ],
    "flux1": [
        ("lora_unet_double_blocks_0_img_attn_qkv", 3072, 9216, False),
        ("lora_unet_double_blocks_0_img_attn_proj", 3072, 3072, False),
        ("lora_unet_double_blocks_0_txt_attn_qkv", 3072, 9216, False),
        ("lora_unet_single_blocks_0_linear1", 3072, 21504, False),
        ("lora_unet_single_blocks_0_linear2", 15360, 3072, False),
    ],
}
_PEFT_MODULES: dict[str, list[tuple[str, int, int]]] = {
    "sd3": [
        ("transformer.transformer_blocks.0.attn.to_q", 1536, 1536),
        ("transformer.transformer_blocks.0.attn.to_k", 1536, 1536),
        ("transformer.transformer_blocks.0.attn.add_q_proj", 1536, 1536),
        ("transformer.transformer_blocks.0.attn.to_add_out", 1536, 1536),
        ("transformer.transformer_blocks.23.attn.to_q", 1536, 1536),
    ],
    "flux2": [
        ("transformer.transformer_blocks.0.attn.to_q", 3072, 3072),
        ("transformer.transformer_blocks.0.ff.linear_in", 3072, 18432),
        ("transformer.single_transformer_blocks.0.attn.to_qkv_mlp_proj", 3072, 27648),
        ("transformer.single_transformer_blocks.0.attn.to_out", 12288, 3072),
        ("transformer.single_transformer_blocks.19.attn.to_qkv_mlp_proj", 3072, 27648),
    ],
}


def sample_adapter_bytes(
    family: str, *, rank: int = 2, alpha: float = 1.0, seed: int = 0, note: str | None = None
) -> bytes:
    """Return a complete ``.safetensors`` file of a small LoRA for ``family`` (one of ``SAMPLE_FAMILIES``).

    ``note`` (e.g. :data:`SAMPLE_NOTE`) is written as the ``lorareg_sample_note`` metadata string; without
    it the bytes are those the demo catalogue has always published.

    Raises:
        ValueError: unknown family or a rank below 1 (a programming error of the caller).
    """
    if rank < 1:
        raise ValueError(f"rank must be >= 1, got {rank}")
    tensors: list[tuple[str, tuple[int, ...]]] = []
    scalars: dict[str, float] = {}
    if family in _KOHYA_MODULES:
        for name, width_in, width_out, conv in _KOHYA_MODULES[family]:
            tail = (1, 1) if conv else ()
            tensors.append((f"{name}.lora_down.weight", (rank, width_in, *tail)))
            tensors.append((f"{name}.lora_up.weight", (width_out, rank, *tail)))
            scalars[f"{name}.alpha"] = alpha
    elif family in _PEFT_MODULES:
        for name, width_in, width_out in _PEFT_MODULES[family]:
            tensors.append((f"{name}.lora_A.weight", (rank, width_in)))
            tensors.append((f"{name}.lora_B.weight", (width_out, rank)))
    else:
        raise ValueError(f"unknown sample family {family!r}; expected one of {SAMPLE_FAMILIES}")
    metadata = {"lorareg_sample": family} | ({"lorareg_sample_note": note} if note else {})
    return _encode(tensors, scalars, seed=seed, metadata=metadata)


def write_large_adapter(path: Path, *, size_bytes: int, seed: int = 0) -> None:
    """Write a kohya SDXL-shaped LoRA of about ``size_bytes`` to ``path`` without holding it in memory.

    One big ``lora_up`` tensor carries the bulk; the benchmarks use this to move a 1 GiB adapter.
    """
    rank = 8
    width_in = 2048
    rows = max(1, (size_bytes - rank * width_in * 2) // (rank * 2))
    name = "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k"
    tensors: list[tuple[str, tuple[int, ...]]] = [
        (f"{name}.lora_down.weight", (rank, width_in)),
        (f"{name}.lora_up.weight", (rows, rank)),
    ]
    header, _ = _header(tensors, {f"{name}.alpha": float(rank)}, metadata={"lorareg_sample": "large"})
    with path.open("wb") as out:
        out.write(header)
        for chunk in _values(sum(_numel(s) for _, s in tensors) * 2, seed=seed):
            out.write(chunk)
        out.write(struct.pack("<e", float(rank)))


def _encode(
    tensors: list[tuple[str, tuple[int, ...]]],
    scalars: dict[str, float],
    *,
    seed: int,
    metadata: dict[str, str],
) -> bytes:
    header, _ = _header(tensors, scalars, metadata=metadata)
    data = b"".join(_values(sum(_numel(shape) for _, shape in tensors) * 2, seed=seed))
    return header + data + b"".join(struct.pack("<e", v) for v in scalars.values())


def _header(
    tensors: list[tuple[str, tuple[int, ...]]],
    scalars: dict[str, float],
    *,
    metadata: dict[str, str],
) -> tuple[bytes, int]:
    entries: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name, shape in tensors:
        size = _numel(shape) * 2
        entries[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    for name in scalars:
        entries[name] = {"dtype": "F16", "shape": [], "data_offsets": [offset, offset + 2]}
        offset += 2
    raw = json.dumps(entries, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % _HEADER_ALIGN)
    return struct.pack("<Q", len(raw)) + raw, offset


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def _values(nbytes: int, *, seed: int) -> Iterator[bytes]:
    """Yield ``nbytes`` of finite fp16 values in [-0.0625, 0.0625), tiling a seeded 1 MiB block."""
    block = bytearray()
    counter = 0
    while len(block) < min(nbytes, _PATTERN_BYTES):
        digest = hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
        for i in range(0, len(digest), 2):
            mantissa = int.from_bytes(digest[i : i + 2], "little") & 0x3FF
            sign = (digest[i] & 1) << 15
            block += (sign | (0x0B << 10) | mantissa).to_bytes(2, "little")  # exponent 11: |v| < 2**-4
    block = block[: min(nbytes, _PATTERN_BYTES)]
    remaining = nbytes
    while remaining > 0:
        piece = bytes(block[:remaining]) if remaining < len(block) else bytes(block)
        remaining -= len(piece)
        yield piece
