"""Image sizes are read from the header and checked against a pixel limit before decoding, so a
file that claims (or decodes to) a giant image is a one-line InputError, not a cv2 traceback or
an exhausted memory."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from b2g_deploy.errors import InputError
from b2g_deploy.io import image_size
from b2g_deploy.io.image_size import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV, header_size, max_pixels
from b2g_deploy.io.images import read_image


def png_claiming(width: int, height: int, colour_type: int = 0) -> bytes:
    """A PNG whose IHDR says width x height; its pixel data is a token (never decoded)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
@pytest.mark.parametrize("channels", [1, 3])
def test_header_size_matches_what_opencv_writes(tmp_path, suffix, channels):
    img = (np.random.default_rng(0).random((37, 53, channels)) * 255).astype(np.uint8)
    path = tmp_path / f"a{suffix}"
    assert cv2.imwrite(str(path), img[..., 0] if channels == 1 else img)
    assert header_size(path.read_bytes()) == (53, 37)


def test_header_size_of_other_kinds(tmp_path):
    img = (np.random.default_rng(0).random((21, 30, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "p.jpg"), img, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    cv2.imwrite(str(tmp_path / "s.png"), img.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp_path / "f.tiff"), img.astype(np.float32) / 255)
    for name in ("p.jpg", "s.png", "f.tiff"):
        assert header_size((tmp_path / name).read_bytes()) == (30, 21), name
    for junk in (b"", b"junk", b"\x89PNG\r\n\x1a\n\0", b"\xff\xd8\xff", b"BM", b"II*\0\xff\xff\xff\xff"):
        assert header_size(junk) is None


@pytest.mark.parametrize("width,height", [(60000, 60000), (30000, 30000)])
def test_giant_png_is_refused_before_decoding(tmp_path, monkeypatch, width, height):
    path = tmp_path / "giant.png"
    path.write_bytes(png_claiming(width, height))

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded an image above the limit")

    monkeypatch.setattr(cv2, "imdecode", no_decode)
    with pytest.raises(InputError, match=rf"{width}x{height}.*{MAX_PIXELS_ENV}"):
        read_image(path)


def test_limit_comes_from_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "small.png"
    cv2.imwrite(str(path), np.zeros((20, 30), np.uint8))
    monkeypatch.delenv(MAX_PIXELS_ENV, raising=False)
    assert max_pixels() == DEFAULT_MAX_PIXELS == 2**28
    monkeypatch.setenv(MAX_PIXELS_ENV, "599")
    with pytest.raises(InputError, match="30x20"):
        read_image(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "600")
    assert read_image(path)[0].shape == (1, 20, 30)
    for bad in ("lots", "0", "-5", "1e9"):
        monkeypatch.setenv(MAX_PIXELS_ENV, bad)
        with pytest.raises(InputError, match=MAX_PIXELS_ENV):
            read_image(path)


def test_opencv_errors_on_an_unparsed_header_are_input_errors(tmp_path, monkeypatch):
    """A file whose size this module cannot read decodes under OpenCV's own checks; an OpenCV
    exception there is an unreadable image too."""
    path = tmp_path / "odd.png"
    path.write_bytes(b"\x00" * 64)

    def raising(*args, **kwargs):
        raise cv2.error("validateInputImageSize")

    monkeypatch.setattr(cv2, "imdecode", raising)
    with pytest.raises(InputError, match="not a readable image"):
        read_image(path)
    assert image_size.header_size(path.read_bytes()) is None


def test_cli_prints_one_line(tmp_path):
    from typer.testing import CliRunner

    from b2g_deploy.cli import app

    path = tmp_path / "giant.png"
    path.write_bytes(png_claiming(60000, 60000))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"unused: the input is refused first")
    result = CliRunner().invoke(app, ["denoise", str(path), "-m", str(model), "-o", str(tmp_path / "o.png")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "60000x60000" in lines[0]
