"""Provenance in JPEG and WebP: EXIF ``UserComment`` as AUTOMATIC1111 writes it, and lorareg's JSON.

JPEG and WebP have no PNG text chunks. A1111 (and Forge) store the ``parameters`` text in the EXIF
``UserComment`` tag (0x9286) as ``piexif.helper.UserComment.dump(text, encoding="unicode")`` does: the
8-byte prefix ``UNICODE\\0`` then UTF-16 big-endian. Civitai and A1111 read that tag back. lorareg's own
JSON record goes into ``MakerNote`` (0x927C) behind the prefix ``lorareg\\0``, where no other reader looks.
Pillow writes and reads both (no piexif needed). Reading accepts the prefixes the EXIF standard defines
(``ASCII``, ``UNICODE`` in either byte order, ``JIS`` is refused) and caps every value's size.
"""

from __future__ import annotations

from typing import Any

from lorareg.errors import InputError

EXIF_IFD = 0x8769  # pointer to the Exif sub-IFD, where UserComment and MakerNote live
USER_COMMENT = 0x9286
MAKER_NOTE = 0x927C
MAX_EXIF_VALUE_BYTES = 1 * 2**20
_UNICODE = b"UNICODE\x00"
_ASCII = b"ASCII\x00\x00\x00"
_UNDEFINED = b"\x00" * 8
_LORAREG = b"lorareg\x00"


def exif_bytes(parameters: str, lorareg_json: str) -> bytes:
    """An EXIF block holding the A1111 text (UserComment) and lorareg's JSON (MakerNote)."""
    from PIL import Image

    exif = Image.Exif()
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[USER_COMMENT] = _UNICODE + parameters.encode("utf-16-be")
    ifd[MAKER_NOTE] = _LORAREG + lorareg_json.encode("utf-8")
    return exif.tobytes()


def read_exif_provenance(image: Any, *, where: str) -> tuple[str | None, str | None]:
    """``(parameters, lorareg JSON)`` from an opened image's EXIF; ``None`` for what is absent."""
    try:
        ifd = image.getexif().get_ifd(EXIF_IFD)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"{where}: unreadable EXIF: {e}") from e
    return _user_comment(ifd.get(USER_COMMENT), where), _maker_note(ifd.get(MAKER_NOTE), where)


def decode_user_comment(raw: bytes) -> str:
    """The text of an EXIF UserComment value (character-code prefix + data), as EXIF 2.3 §4.6.5 defines."""
    prefix, data = raw[:8], raw[8:]
    if prefix == _UNICODE:
        return data.decode(_utf16_order(data), errors="replace").rstrip("\x00")
    if prefix in (_ASCII, _UNDEFINED):
        return data.decode("utf-8", errors="replace").rstrip("\x00")
    raise InputError(f"UserComment has character code {prefix!r}, not ASCII or UNICODE")


def _user_comment(value: object, where: str) -> str | None:
    raw = _bytes(value, where, "UserComment")
    return None if raw is None else decode_user_comment(raw)


def _maker_note(value: object, where: str) -> str | None:
    raw = _bytes(value, where, "MakerNote")
    if raw is None or not raw.startswith(_LORAREG):
        return None  # a camera's MakerNote, not ours
    try:
        return raw[len(_LORAREG) :].decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{where}: lorareg EXIF record is not UTF-8") from e


def _bytes(value: object, where: str, tag: str) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("utf-8", errors="replace")
    if not isinstance(value, bytes):
        raise InputError(f"{where}: EXIF {tag} is {type(value).__name__}, expected bytes")
    if len(value) > MAX_EXIF_VALUE_BYTES:
        raise InputError(f"{where}: EXIF {tag} is {len(value)} bytes; at most {MAX_EXIF_VALUE_BYTES}")
    return value


def _utf16_order(data: bytes) -> str:
    """piexif writes UTF-16 big-endian, some tools little-endian: ASCII text tells which by its zeros."""
    even_zeros = sum(1 for b in data[0::2] if b == 0)
    odd_zeros = sum(1 for b in data[1::2] if b == 0)
    return "utf-16-le" if odd_zeros > even_zeros else "utf-16-be"
