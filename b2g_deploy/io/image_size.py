"""Image size from the file header, read before decoding, and the pixel limit it is checked against.

A few hundred bytes can claim 60000x60000 pixels, and a PNG of under a megabyte can decode to
30000x30000 grey (and then to 3.6 GB as float32): the size must be known, and refused, before
the decoder allocates anything. PNG, JPEG, BMP and TIFF (the types ``read_image`` accepts) are
parsed here; anything else decodes under OpenCV's own limit.
"""

from __future__ import annotations

import os
import struct
from typing import Any

from ..errors import InputError

MAX_PIXELS_ENV = "B2G_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 2**28  # 268 megapixels: 16384x16384, 1 GiB per float32 channel

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they hold the size.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def max_pixels() -> int:
    """The limit: $B2G_MAX_PIXELS if set, else DEFAULT_MAX_PIXELS."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise InputError(f"{MAX_PIXELS_ENV}={text!r} must be a positive whole number of pixels")
    return value


def _png(buf: Any) -> tuple[int, int] | None:
    if len(buf) >= 24 and bytes(buf[:8]) == b"\x89PNG\r\n\x1a\n" and bytes(buf[12:16]) == b"IHDR":
        return struct.unpack_from(">II", buf, 16)
    return None


def _jpeg(buf: Any) -> tuple[int, int] | None:
    if len(buf) < 4 or buf[0] != 0xFF or buf[1] != 0xD8:
        return None
    i = 2
    while i + 4 <= len(buf):
        if buf[i] != 0xFF:
            return None  # lost sync: not a header we understand
        marker = buf[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame header
            return None
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", buf, i + 5)
            return width, height
        (length,) = struct.unpack_from(">H", buf, i + 2)
        if length < 2:
            return None
        i += 2 + length
    return None


def _bmp(buf: Any) -> tuple[int, int] | None:
    if len(buf) < 26 or bytes(buf[:2]) != b"BM":
        return None
    (header,) = struct.unpack_from("<I", buf, 14)
    if header == 12:  # BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack_from("<HH", buf, 18)
    width, height = struct.unpack_from("<ii", buf, 18)
    return abs(width), abs(height)  # a negative height means rows stored top-down


def _tiff(buf: Any) -> tuple[int, int] | None:
    """Width and height of the first image (the one OpenCV decodes)."""
    if len(buf) < 8 or bytes(buf[:4]) not in (b"II*\x00", b"MM\x00*"):
        return None
    end = "<" if buf[0] == ord("I") else ">"
    (ifd,) = struct.unpack_from(end + "I", buf, 4)
    if ifd + 2 > len(buf):
        return None
    (count,) = struct.unpack_from(end + "H", buf, ifd)
    found: dict[int, int] = {}
    for k in range(count):
        at = ifd + 2 + 12 * k
        if at + 12 > len(buf):
            break
        tag, kind = struct.unpack_from(end + "HH", buf, at)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            found[tag] = struct.unpack_from(end + ("H" if kind == 3 else "I"), buf, at + 8)[0]
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def header_size(buf: Any) -> tuple[int, int] | None:
    """(width, height) from a PNG, JPEG, BMP or TIFF header; None if the bytes are none of
    these (or too damaged to say). ``buf`` is anything with the buffer protocol."""
    buf = memoryview(buf).cast("B")
    for parse in (_png, _jpeg, _bmp, _tiff):
        try:
            size = parse(buf)
        except struct.error:  # a header cut short
            size = None
        if size is not None:
            return int(size[0]), int(size[1])
    return None


def check_pixel_limit(buf: Any, where: object) -> None:
    """InputError if the header claims more pixels than the limit (see ``max_pixels``)."""
    size = header_size(buf)
    limit = max_pixels()
    if size is not None and size[0] * size[1] > limit:
        raise InputError(
            f"{where} is {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} megapixels), more than the "
            f"{limit}-pixel limit; set {MAX_PIXELS_ENV} to allow it"
        )
