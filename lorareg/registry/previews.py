"""Preview images of adapter versions: checked with Pillow, re-encoded clean, stored as blobs.

An uploaded image is untrusted bytes. It is accepted only if Pillow recognises it as PNG, JPEG or WebP
(by its content, never by a name or a declared type), its encoded size and pixel count are under the caps,
and it decodes completely. ``Image.MAX_IMAGE_PIXELS`` is lowered to our pixel cap and Pillow's
decompression-bomb warning is turned into a refusal, so a tiny file that claims a gigapixel canvas is
refused before any pixel is decoded. What is stored is a fresh image built from the decoded pixels only
(EXIF orientation applied first): no EXIF, GPS, ICC, XMP or text chunks survive, and nothing the uploader
wrote in the container reaches a visitor. A WebP thumbnail is made beside it. Both go into the registry's
BlobStore under their SHA-256; a version holds at most :data:`MAX_PREVIEWS_PER_VERSION`.

Deliberately not here: HTTP, HTML, and adapter blobs (previews have no row in ``blobs``).
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from lorareg.errors import ConflictError, GoneError, InputError, NotFoundError, PayloadTooLargeError
from lorareg.registry.auth import Principal
from lorareg.registry.blobs import check_sha256
from lorareg.registry.db import Preview, utcnow
from lorareg.registry.service import Registry

MAX_PREVIEWS_PER_VERSION = 8
MAX_UPLOAD_BYTES = 16 * 2**20  # an encoded preview image over 16 MiB is refused unread
MAX_PIXELS = 4096 * 4096  # decoded pixels, read from the header before any decoding (a 6000x6000 PNG
# took 4 s and 600 MB to decode only to be scaled to 2048 px); also Pillow's MAX_IMAGE_PIXELS
MAX_SIDE_PX = 8192  # longest side accepted
STORED_SIDE_PX = 2048  # larger images are scaled down to this longest side when stored
THUMB_SIDE_PX = 512  # thumbnails fit in this square
JPEG_QUALITY = 90
WEBP_QUALITY = 85
ALLOWED_FORMATS: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
THUMB_MEDIA_TYPE = "image/webp"

if Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS > MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True, slots=True)
class CleanImage:
    """A re-encoded preview and its thumbnail, as bytes ready to store."""

    data: bytes
    media_type: str
    width: int
    height: int
    thumb: bytes


@dataclass(frozen=True, slots=True)
class PreviewRecord:
    """A stored preview of one version; URLs are served by the web UI under ``/previews/``."""

    name: str
    version: str
    position: int
    sha256: str
    media_type: str
    width: int
    height: int
    thumb_sha256: str
    thumb_media_type: str

    @property
    def url(self) -> str:
        return f"/previews/{self.sha256}"

    @property
    def thumb_url(self) -> str:
        return f"/previews/{self.thumb_sha256}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "position": self.position,
            "sha256": self.sha256,
            "media_type": self.media_type,
            "width": self.width,
            "height": self.height,
            "url": self.url,
            "thumb_sha256": self.thumb_sha256,
            "thumb_url": self.thumb_url,
        }


def clean_image(data: bytes) -> CleanImage:
    """Check an untrusted image and re-encode it without metadata; make its thumbnail.

    Raises:
        PayloadTooLargeError: over :data:`MAX_UPLOAD_BYTES`, :data:`MAX_PIXELS` or :data:`MAX_SIDE_PX`
            (also a decompression bomb).
        InputError: not a PNG, JPEG or WebP image, or it does not decode.
    """
    if len(data) > MAX_UPLOAD_BYTES:
        raise PayloadTooLargeError(f"preview image is {len(data)} bytes; the cap is {MAX_UPLOAD_BYTES}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _decode(data)
    fmt = str(image.format)
    pixels = _pixels_only(ImageOps.exif_transpose(image) or image)
    if max(pixels.size) > STORED_SIDE_PX:
        pixels.thumbnail((STORED_SIDE_PX, STORED_SIDE_PX), Image.Resampling.LANCZOS)
    thumb = pixels.copy()
    thumb.thumbnail((THUMB_SIDE_PX, THUMB_SIDE_PX), Image.Resampling.LANCZOS)
    return CleanImage(
        data=_encode(pixels, fmt),
        media_type=ALLOWED_FORMATS[fmt],
        width=pixels.width,
        height=pixels.height,
        thumb=_encode(thumb, "WEBP"),
    )


class Previews:
    """Preview images over one :class:`Registry` (stateless)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def add(self, name: str, version: str, data: bytes, *, principal: Principal) -> PreviewRecord:
        """Check, clean and store an image as the next preview of ``name@version``.

        Raises:
            ForbiddenError: the principal may not publish into the namespace.
            NotFoundError: no such version.
            GoneError: the version was revoked.
            ConflictError: the version has :data:`MAX_PREVIEWS_PER_VERSION` previews already.
            InputError, PayloadTooLargeError: see :func:`clean_image`.
        """
        principal.require("publish", namespace=name.split("/", 1)[0])
        record = self.registry.get_version(name, version)
        if record.status == "revoked":
            raise GoneError(f"{record.name}@{record.version} was revoked; it takes no previews")
        self._check_room(name, version)  # a refused 9th image is neither decoded nor stored
        clean = clean_image(data)
        sha256, thumb_sha256 = self._store(clean.data), self._store(clean.thumb)
        try:
            with self.registry.db.write() as session:
                count = session.execute(
                    sa.select(sa.func.count()).select_from(Preview).where(*_of(name, version))
                ).scalar_one()
                if count >= MAX_PREVIEWS_PER_VERSION:
                    raise ConflictError(
                        f"{name}@{version} has {count} previews already; "
                        f"the limit is {MAX_PREVIEWS_PER_VERSION}"
                    )
                row = Preview(
                    name=name,
                    version=version,
                    position=count,
                    sha256=sha256,
                    media_type=clean.media_type,
                    width=clean.width,
                    height=clean.height,
                    thumb_sha256=thumb_sha256,
                    thumb_media_type=THUMB_MEDIA_TYPE,
                    added=utcnow(),
                )
                session.add(row)
        except IntegrityError as e:  # another upload took this position at the same moment
            raise ConflictError(f"a preview of {name}@{version} was added concurrently; retry") from e
        return _record(row)

    def for_version(self, name: str, version: str) -> list[PreviewRecord]:
        """The previews of one version in upload order (empty when none)."""
        query = select(Preview).where(*_of(name, version)).order_by(col(Preview.position))
        with self.registry.db.read() as session:
            return [_record(r) for r in session.exec(query)]

    def first_of(self, refs: list[tuple[str, str]]) -> dict[tuple[str, str], PreviewRecord]:
        """The first preview of each ``(name, version)`` given (catalogue cards), in one query."""
        if not refs:
            return {}
        pairs = [sa.and_(col(Preview.name) == n, col(Preview.version) == v) for n, v in refs]
        query = select(Preview).where(col(Preview.position) == 0, sa.or_(*pairs))
        with self.registry.db.read() as session:
            return {(r.name, r.version): _record(r) for r in session.exec(query)}

    def open(self, sha256: str) -> tuple[str, Iterator[bytes]]:
        """``(media type, chunks)`` of a stored preview or thumbnail; 451 once its version is revoked.

        Raises:
            NotFoundError: no preview has that digest.
            GoneError: the version it shows was revoked.
        """
        check_sha256(sha256)
        query = select(Preview).where(
            sa.or_(col(Preview.sha256) == sha256, col(Preview.thumb_sha256) == sha256)
        )
        with self.registry.db.read() as session:
            row = session.exec(query).first()
        if row is None:
            raise NotFoundError(f"no preview image has sha256 {sha256}")
        version = self.registry.get_version(row.name, row.version)
        if version.status == "revoked":
            raise GoneError(f"{row.name}@{row.version} was revoked: {version.revocation_reason}")
        media_type = row.media_type if row.sha256 == sha256 else row.thumb_media_type
        return media_type, self.registry.store.open_range(sha256, 0, None)

    def _check_room(self, name: str, version: str) -> None:
        """ConflictError when the version has its maximum of previews (checked again with the row)."""
        with self.registry.db.read() as session:
            count = session.execute(
                sa.select(sa.func.count()).select_from(Preview).where(*_of(name, version))
            ).scalar_one()
        if count >= MAX_PREVIEWS_PER_VERSION:
            raise ConflictError(
                f"{name}@{version} has {count} previews already; the limit is {MAX_PREVIEWS_PER_VERSION}"
            )

    def _store(self, data: bytes) -> str:
        """Put bytes into the BlobStore under their SHA-256 (idempotent) and return the digest."""
        sha256 = hashlib.sha256(data).hexdigest()
        if self.registry.store.exists(sha256):
            return sha256
        pending = self.registry.store.begin()
        try:
            pending.write(data)
            pending.commit(sha256)
        except BaseException:
            pending.abort()
            raise
        return sha256


def _decode(data: bytes) -> Image.Image:
    """Open by content as one of the allowed formats, check the caps, then decode every pixel."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PayloadTooLargeError(f"preview image has too many pixels (decompression bomb?): {e}") from e
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise InputError("preview image is not a PNG, JPEG or WebP file (checked by content)") from e
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_PIXELS or max(width, height) > MAX_SIDE_PX:
        raise PayloadTooLargeError(
            f"preview image is {width}x{height} pixels; "
            f"the caps are {MAX_PIXELS} pixels and {MAX_SIDE_PX} per side"
        )
    try:
        image.seek(0)  # an animation contributes its first frame only
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise PayloadTooLargeError(f"preview image has too many pixels: {e}") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise InputError(f"preview image does not decode ({type(e).__name__}: {e})") from e
    return image


def _pixels_only(image: Image.Image) -> Image.Image:
    """A new image holding only the pixels (RGB or RGBA): no ``info``, no palette tricks, no metadata."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    converted = image.convert("RGBA" if has_alpha else "RGB")
    return Image.frombytes(converted.mode, converted.size, converted.tobytes())


def _encode(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "JPEG":
        image.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif fmt == "WEBP":
        image.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    else:
        image.save(out, "PNG", optimize=True)
    return out.getvalue()


def _of(name: str, version: str) -> tuple[Any, Any]:
    return col(Preview.name) == name, col(Preview.version) == version


def _record(row: Preview) -> PreviewRecord:
    return PreviewRecord(
        name=row.name,
        version=row.version,
        position=row.position,
        sha256=row.sha256,
        media_type=row.media_type,
        width=row.width,
        height=row.height,
        thumb_sha256=row.thumb_sha256,
        thumb_media_type=row.thumb_media_type,
    )
