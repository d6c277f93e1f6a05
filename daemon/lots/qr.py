"""QR codes for lot labels: PNG from pure Python (qrcode + pypng), nothing to compile on a Pi."""

from __future__ import annotations

import io
from urllib.parse import quote


def trace_url(base: str, code: str) -> str:
    """The public page a QR code on a box opens."""
    return f"{base.rstrip('/')}/trace/{quote(code, safe='')}"


def qr_png(text: str, box_size: int = 8, border: int = 4) -> bytes:
    """A PNG image of `text` as a QR code (error correction M: survives a scuffed label)."""
    import qrcode
    from qrcode.image.pure import PyPNGImage

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=border,
                       image_factory=PyPNGImage)
    qr.add_data(text)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    return buf.getvalue()
