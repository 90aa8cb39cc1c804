"""Recognise files that are not safetensors, pickles above all, and explain how to convert them.

A pickle (``.ckpt``, ``.pt``, ``.pth``, ``.bin``, ``torch.save``'s ZIP archives) can run arbitrary code when
loaded, so lorareg never loads one: it recognises them by name and by their first bytes and refuses them
with an :class:`~lorareg.errors.InputError` that says why and how to convert. Other common model formats
get a plain "this is X, not safetensors".

What it deliberately does not do: parse or load anything. It looks at a file name and at most 8 bytes.
"""

from __future__ import annotations

from pathlib import Path

from lorareg.errors import InputError

#: File name suffixes of pickle-based formats (PyTorch, diffusers' legacy ``.bin``, plain pickle).
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")

CONVERT_HINT = (
    "convert it in a trusted sandbox: load it with torch.load and save the tensors with "
    "safetensors.torch.save_file"
)

_PICKLE_PROTOCOL_OPCODE = 0x80  # PROTO, the first opcode of pickle protocols 2 to 5
_PICKLE_PROTOCOLS = range(2, 6)
_MAGIC = (
    (b"PK\x03\x04", f"a ZIP archive (torch.save's format, which holds a pickle); {CONVERT_HINT}"),
    (b"PK\x05\x06", "an empty ZIP archive"),
    (b"GGUF", "a GGUF model (llama.cpp); lorareg reads LoRA adapters in safetensors only"),
    (b"\x93NUMPY", "a NumPy .npy array"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras .h5)"),
    (b"\x1f\x8b", "gzip-compressed; decompress it first"),
)


def refuse_pickle_name(file: Path) -> None:
    """Raise :class:`InputError` if ``file``'s suffix is a pickle format's, whatever its bytes."""
    if file.suffix.lower() in PICKLE_SUFFIXES:
        raise InputError(
            f"{file.name}: '{file.suffix}' files are PyTorch pickles, which can run code when loaded; "
            f"lorareg never loads them; {CONVERT_HINT}"
        )


def refuse_foreign_magic(prefix: bytes) -> None:
    """Raise :class:`InputError` naming the format when ``prefix`` (a file's first bytes) is a known magic.

    Call it only when the bytes do not frame a plausible safetensors header: a valid 640-byte header
    starts with ``80 02``, which is also the pickle protocol-2 magic.
    """
    if len(prefix) >= 2 and prefix[0] == _PICKLE_PROTOCOL_OPCODE and prefix[1] in _PICKLE_PROTOCOLS:
        raise InputError(
            f"file is a Python pickle (protocol {prefix[1]}), which can run code when loaded; lorareg "
            f"never loads pickles; {CONVERT_HINT}"
        )
    for magic, what in _MAGIC:
        if prefix.startswith(magic):
            raise InputError(f"file is {what}, not safetensors")
