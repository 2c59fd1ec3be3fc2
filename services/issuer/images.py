"""QR images and printable posters, rendered once per variant and served with a strong ETag.

segno takes a few milliseconds for a PNG; a poster (reportlab) tens. Both are pure functions
of their arguments, so an LRU cache keyed by the arguments is all the caching needed, and the
ETag is the SHA-256 of the bytes.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from functools import lru_cache

import segno
from reportlab.lib.pagesizes import A4
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

CONTENT_TYPES = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "eps": "application/postscript",
}
FONT = "STSong-Light"  # Adobe's CID font for simplified Chinese: no font file to embed
pdfmetrics.registerFont(UnicodeCIDFont(FONT))


@dataclass(frozen=True)
class Image:
    body: bytes
    content_type: str

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'


@lru_cache(maxsize=4096)
def qr_image(
    payload: str,
    kind: str,
    scale: int = 8,
    border: int = 4,
    dark: str = "#000000",
    light: str = "#ffffff",
    error: str = "M",
) -> Image:
    qr = segno.make(payload, error=error.lower(), micro=False, boost_error=False)
    colours = {"dark": _colour(dark), "light": None if light == "transparent" else _colour(light)}
    if kind == "eps":  # segno writes EPS as text
        text = io.StringIO()
        qr.save(text, kind=kind, scale=scale, border=border, **colours)
        return Image(text.getvalue().encode("ascii"), CONTENT_TYPES[kind])
    out = io.BytesIO()
    qr.save(out, kind=kind, scale=scale, border=border, **colours)
    return Image(out.getvalue(), CONTENT_TYPES[kind])


def _colour(value: str) -> str:
    return value if value.startswith("#") else "#" + value


@dataclass(frozen=True)
class PosterText:
    title: str
    validity: str
    channel: str | None


@lru_cache(maxsize=512)
def poster(payload: str, text: PosterText) -> Image:
    """An A4 page: the group's name, the QR code, how long it is valid, the channel."""
    width, height = A4
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, invariant=1)  # invariant: same bytes, same ETag
    page.setTitle(text.title)
    page.setFont(FONT, 28)
    page.drawCentredString(width / 2, height - 110, _fit(text.title, 28, width - 80))
    page.setFont(FONT, 14)
    page.drawCentredString(
        width / 2, height - 145, "扫一扫二维码，加入群聊 · Scan the QR code to join"
    )

    qr = segno.make(payload, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    side = 380.0
    unit = side / modules
    left, top = (width - side) / 2, height - 180
    page.setFillColorRGB(0, 0, 0)
    for row, line in enumerate(qr.matrix_iter(scale=1, border=4)):
        for col, dark in enumerate(line):
            if dark:
                page.rect(left + col * unit, top - (row + 1) * unit, unit, unit, stroke=0, fill=1)

    page.setFont(FONT, 14)
    page.drawCentredString(width / 2, top - side - 40, text.validity)
    if text.channel:
        page.setFont(FONT, 11)
        page.drawCentredString(width / 2, top - side - 65, f"渠道 Channel: {text.channel}")
    page.showPage()
    page.save()
    return Image(out.getvalue(), CONTENT_TYPES["pdf"])


def _fit(text: str, size: int, room: float) -> str:
    while len(text) > 1 and pdfmetrics.stringWidth(text, FONT, size) > room:
        text = text[:-2] + "…"
    return text
