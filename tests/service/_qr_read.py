"""Reading a QR code back from a screenshot with an independent decoder (ZXing's C++ port,
the ``zxing-cpp`` wheel), not the library that drew it: PNG decoding is done here (8-bit RGB
or RGBA, as Chromium writes screenshots) so the test needs no imaging library."""

from __future__ import annotations

import struct
import zlib

import pytest

__all__ = ["decode_png", "read_qr"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {2: 3, 6: 4}  # colour type: RGB, RGBA


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode_png(data: bytes) -> tuple[int, int, int, bytes]:
    """``(width, height, channels, pixels)`` of a non-interlaced 8-bit RGB(A) PNG."""
    if data[:8] != _SIGNATURE:
        raise ValueError("not a PNG")
    pos, packed = 8, bytearray()
    width = height = channels = 0
    while pos < len(data):
        (size,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + size]
        pos += 12 + size
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or colour not in _CHANNELS or interlace:
                raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour}")
            channels = _CHANNELS[colour]
        elif kind == b"IDAT":
            packed += body
    raw = zlib.decompress(bytes(packed))
    stride = width * channels
    out = bytearray(stride * height)
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        method, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for x in range(stride):
            left = line[x - channels] if x >= channels else 0
            up = previous[x]
            corner = previous[x - channels] if x >= channels else 0
            if method == 1:
                line[x] = (line[x] + left) & 0xFF
            elif method == 2:
                line[x] = (line[x] + up) & 0xFF
            elif method == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif method == 4:
                line[x] = (line[x] + _paeth(left, up, corner)) & 0xFF
        out[y * stride : (y + 1) * stride] = line
        previous = line
    return width, height, channels, bytes(out)


def read_qr(png: bytes) -> list[str]:
    """The texts of every QR code ZXing finds in a PNG screenshot."""
    zxingcpp = pytest.importorskip("zxingcpp", reason="pip install zxing-cpp (the test extra)")
    width, height, channels, pixels = decode_png(png)
    grey = bytes(
        (pixels[i] * 299 + pixels[i + 1] * 587 + pixels[i + 2] * 114) // 1000
        for i in range(0, len(pixels), channels)
    )
    view = zxingcpp.ImageView(memoryview(grey), width, height, zxingcpp.ImageFormat.Lum)
    found = zxingcpp.read_barcodes(view, formats=zxingcpp.BarcodeFormat.QRCode)
    return [code.text for code in found]
