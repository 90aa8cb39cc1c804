"""Preview images: only real PNG/JPEG/WebP under the caps get in, metadata never survives, a version holds
at most eight, only its publisher adds them, and a revoked version's previews answer 451."""

from __future__ import annotations

import io
import zlib

import pytest
from PIL import Image, PngImagePlugin

from lorareg.errors import ConflictError, ForbiddenError, InputError, PayloadTooLargeError
from lorareg.registry.previews import MAX_PREVIEWS_PER_VERSION, THUMB_SIDE_PX, Previews, clean_image
from tests.fixtures.registry import make_publisher
from tests.fixtures.web import WebSite, png_bytes


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x8825] = {2: (52.0, 31.0, 12.0)}  # GPSInfo: latitude
    exif[0x010E] = "secret description"
    out = io.BytesIO()
    Image.new("RGB", (80, 60), (10, 200, 30)).save(out, "JPEG", exif=exif)
    return out.getvalue()


def _png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "prompt: <script>alert(1)</script>")
    return png_bytes((70, 50), pnginfo=info)


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge canvas (IHDR patched, CRC fixed): a decompression bomb."""
    data = bytearray(png_bytes((1, 1)))
    ihdr = 8 + 8  # signature, then length + type of the IHDR chunk
    data[ihdr : ihdr + 8] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    crc = zlib.crc32(bytes(data[12 : ihdr + 13]))
    data[ihdr + 13 : ihdr + 17] = crc.to_bytes(4, "big")
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "media_type"),
    [
        (png_bytes(), "image/png"),
        (png_bytes(fmt="JPEG"), "image/jpeg"),
        (png_bytes(fmt="WEBP"), "image/webp"),
    ],
    ids=["png", "jpeg", "webp"],
)
def test_png_jpeg_and_webp_are_accepted_and_thumbnailed(data: bytes, media_type: str) -> None:
    clean = clean_image(data)
    assert clean.media_type == media_type and (clean.width, clean.height) == (64, 48)
    thumb = Image.open(io.BytesIO(clean.thumb))
    assert thumb.format == "WEBP" and max(thumb.size) <= THUMB_SIDE_PX


def test_exif_gps_and_png_text_chunks_are_stripped() -> None:
    jpeg = clean_image(_jpeg_with_gps()).data
    assert not Image.open(io.BytesIO(jpeg)).getexif() and b"secret description" not in jpeg
    png = clean_image(_png_with_text()).data
    assert b"parameters" not in png and b"<script>" not in png
    assert not Image.open(io.BytesIO(png)).info.get("parameters")


def test_large_images_are_scaled_down_for_storage() -> None:
    clean = clean_image(png_bytes((3000, 1000)))
    assert (clean.width, clean.height) == (2048, 683)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", InputError),
        (b"GIF89a" + b"\x00" * 64, InputError),
        (png_bytes(fmt="GIF"), InputError),
        (png_bytes(fmt="BMP"), InputError),
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', InputError),
        (b"<html><script>alert(1)</script></html>" + png_bytes(), InputError),
        (png_bytes()[:60], InputError),
        (_png_claiming(100_000, 100_000), PayloadTooLargeError),
        (_png_claiming(7_000, 7_000), PayloadTooLargeError),
        (_png_claiming(20_000, 10), PayloadTooLargeError),
        (b"\x89PNG" + b"\x00" * (17 * 2**20), PayloadTooLargeError),
    ],
    ids=["empty", "gif-magic", "gif", "bmp", "svg", "html-polyglot", "truncated-png", "bomb-10g-pixels",
         "over-pixel-cap", "over-side-cap", "over-byte-cap"],
)  # fmt: skip
def test_hostile_images_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        clean_image(data)


def test_a_version_takes_at_most_eight_previews(web: WebSite) -> None:
    record = web.publisher.publish()
    previews = Previews(web.registry)
    for i in range(MAX_PREVIEWS_PER_VERSION):
        added = previews.add(
            record.name, record.version, png_bytes(color=(i, 0, 0)), principal=web.publisher.principal
        )
        assert added.position == i
    with pytest.raises(ConflictError, match="limit is 8"):
        previews.add(record.name, record.version, png_bytes(), principal=web.publisher.principal)
    assert [p.position for p in previews.for_version(record.name, record.version)] == list(range(8))


def test_only_the_namespace_publisher_adds_previews(web: WebSite) -> None:
    record = web.publisher.publish()
    other = make_publisher(web.registry, "rival")
    with pytest.raises(ForbiddenError):
        Previews(web.registry).add(record.name, record.version, png_bytes(), principal=other.principal)
    url = f"/api/v1/adapters/{record.name}/versions/{record.version}/previews"
    answer = web.client.post(url, content=png_bytes(), headers={"Authorization": f"Bearer {other.secret}"})
    assert answer.status_code == 403


def test_bad_image_through_the_api_is_a_clear_400(web: WebSite) -> None:
    record = web.publisher.publish()
    url = f"/api/v1/adapters/{record.name}/versions/{record.version}/previews"
    answer = web.client.post(
        url, content=b"GIF89a...", headers={"Authorization": f"Bearer {web.publisher.secret}"}
    )
    assert answer.status_code == 400
    assert "not a PNG, JPEG or WebP" in answer.json()["error"]["message"]


def test_previews_are_served_with_their_type_and_451_once_revoked(web: WebSite) -> None:
    record = web.publisher.publish()
    added = Previews(web.registry).add(
        record.name, record.version, png_bytes(), principal=web.publisher.principal
    )
    served = web.client.get(added.url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    listed = web.client.get(f"/api/v1/adapters/{record.name}/versions/{record.version}/previews").json()
    assert [p["sha256"] for p in listed["items"]] == [added.sha256]
    reviewer = web.registry.authenticate(web.registry.create_token(role="reviewer").secret)
    web.registry.revoke(record.sha256, reason="upheld", principal=reviewer)
    assert web.client.get(added.url).status_code == 451
    assert web.client.get(added.thumb_url).status_code == 451
    assert web.client.get("/previews/" + "0" * 64).status_code == 404
