"""Generated sample pictures: the demo catalogue's previews and the tour's ``harbour.png``.

A demo catalogue of grey boxes tells a visitor nothing, and a screenshot with images the demo cannot show
is a promise it does not keep. These pictures are drawn from a seed (a two-colour gradient, a horizon and a
few soft circles) and carry a visible "SAMPLE" label, so nobody mistakes them for what an adapter makes:
the demo's adapters have random weights and make no images at all.

Pillow only (a core dependency); deterministic for a seed, so re-seeding a demo adds nothing new.
"""

from __future__ import annotations

import hashlib
import io
import math

from PIL import Image, ImageDraw, ImageFont

SAMPLE_SIZE_PX = (640, 480)
SAMPLE_LABEL = "SAMPLE · generated"
_LABEL_FONT_PX = 34  # still legible on a 260 px catalogue card
_LABEL_MARGIN_PX = 12


def sample_picture(
    seed: int | str, *, label: str = SAMPLE_LABEL, size: tuple[int, int] = SAMPLE_SIZE_PX
) -> bytes:
    """Return a PNG of a seeded gradient landscape with ``label`` written across its bottom-left corner."""
    top, bottom, accent = _palette(seed)
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line([(0, y), (width, y)], fill=_mix(top, bottom, t))
    horizon = int(height * 0.62)
    points = [(x, horizon + int(18 * math.sin(x / 37 + _turn(seed)))) for x in range(0, width + 1, 8)]
    draw.polygon([(0, height), *points, (width, height)], fill=_mix(bottom, (20, 24, 32), 0.55))
    for i in range(5):
        x = int(width * (0.15 + 0.17 * i))
        y = int(height * 0.38 + 60 * math.sin(i + _turn(seed)))
        r = 26 + 9 * i
        draw.ellipse([x - r, y - r, x + r, y + r], outline=accent, width=3)
    _draw_label(draw, label, height=height)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _draw_label(draw: ImageDraw.ImageDraw, label: str, *, height: int) -> None:
    font = ImageFont.load_default(size=_LABEL_FONT_PX)
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    x, y = _LABEL_MARGIN_PX, height - _LABEL_MARGIN_PX - (bottom - top) - 8
    draw.rectangle([x, y, x + (right - left) + 16, y + (bottom - top) + 10], fill=(0, 0, 0))
    draw.text((x + 8 - left, y + 5 - top), label, fill=(255, 255, 255), font=font)


def _palette(seed: int | str) -> tuple[tuple[int, int, int], ...]:
    digest = hashlib.sha256(f"lorareg-sample-picture:{seed}".encode()).digest()
    return tuple((digest[i], digest[i + 1], digest[i + 2]) for i in (0, 3, 6))


def _turn(seed: int | str) -> float:
    return int.from_bytes(hashlib.sha256(str(seed).encode()).digest()[:2], "big") / 65535 * math.tau


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))
