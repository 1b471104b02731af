"""QR codes for the TOTP enrolment pages, drawn by ``segno`` (pure Python) as inline SVG:
no image request, nothing for the page's policy to allow, and it scales with the page."""

from __future__ import annotations

import segno

__all__ = ["qr_svg"]


def qr_svg(text: str, label: str) -> str:
    """An inline SVG QR code of ``text`` (error correction M, a quiet zone of 4 modules),
    described to screen readers by ``label``."""
    code = segno.make(text, error="m", micro=False, boost_error=False)
    svg = code.svg_inline(scale=1, border=4, dark="#000", light="#fff", omitsize=True)
    size = code.symbol_size(border=4)[0]
    return svg.replace(
        "<svg ",
        f'<svg role="img" aria-label="{label}" class="qr" data-modules="{size}" ',
        1,
    )
