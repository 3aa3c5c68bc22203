import cv2
import numpy as np
import pytest

from b2g_deploy.errors import InputError, OutputExistsError
from b2g_deploy.io.images import read_image, write_image


@pytest.mark.parametrize("suffix,dtype,depth", [(".png", np.uint8, 8), (".png", np.uint16, 16), (".tif", np.uint16, 16)])
def test_round_trip_keeps_bit_depth(tmp_path, suffix, dtype, depth):
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    raw = rng.integers(0, top, size=(20, 24, 3), dtype=dtype)
    path = tmp_path / f"in{suffix}"
    cv2.imwrite(str(path), raw)
    chw, info = read_image(path)
    assert info.bit_depth == depth and info.channels == 3 and chw.shape == (3, 20, 24)
    assert np.allclose(chw[0], raw[..., 2] / top)  # RGB inside, BGR in OpenCV files
    out = tmp_path / f"out{suffix}"
    write_image(out, chw, depth)
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_UNCHANGED), raw)


def test_grey_and_float_tiff(tmp_path):
    grey = tmp_path / "g.png"
    cv2.imwrite(str(grey), np.full((16, 16), 128, np.uint8))
    chw, info = read_image(grey)
    assert chw.shape == (1, 16, 16) and info.channels == 1
    flt = tmp_path / "f.tif"
    cv2.imwrite(str(flt), np.full((16, 16), 0.25, np.float32))
    chw, info = read_image(flt)
    assert info.bit_depth == 32 and np.allclose(chw, 0.25)


def test_bad_images_are_user_errors(tmp_path):
    alpha = tmp_path / "a.png"
    cv2.imwrite(str(alpha), np.zeros((16, 16, 4), np.uint8))
    tiny = tmp_path / "t.png"
    cv2.imwrite(str(tiny), np.zeros((16, 1, 3), np.uint8))
    nan = tmp_path / "n.tif"
    arr = np.zeros((16, 16), np.float32)
    arr[3, 3] = np.nan
    cv2.imwrite(str(nan), arr)
    text = tmp_path / "x.png"
    text.write_text("hello")
    good = tmp_path / "good.png"
    cv2.imwrite(str(good), np.zeros((64, 64, 3), np.uint8))
    truncated = tmp_path / "trunc.png"
    truncated.write_bytes(good.read_bytes()[:60])
    empty = tmp_path / "e.png"
    empty.write_bytes(b"")
    for path, words in [
        (alpha, "alpha"),
        (tiny, "at least"),
        (nan, "NaN"),
        (text, "not a readable image"),
        (truncated, "not a readable image"),
        (empty, "not a readable image"),
        (tmp_path / "missing.png", "does not exist"),
    ]:
        with pytest.raises(InputError, match=words):
            read_image(path)


def test_write_refuses_existing_output_and_leaves_nothing_behind(tmp_path):
    out = tmp_path / "o.png"
    write_image(out, np.zeros((3, 8, 8), np.float32), 8)
    with pytest.raises(OutputExistsError):
        write_image(out, np.zeros((3, 8, 8), np.float32), 8)
    with pytest.raises(InputError):
        write_image(tmp_path / "o.jpg", np.zeros((3, 8, 8), np.float32), 16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.png"]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("bit_depth", [8, 16, 32])
def test_to_storage_gives_the_values_of_the_transposed_formula_contiguously(channels, bit_depth):
    from b2g_deploy.io.images import to_storage

    rng = np.random.default_rng(channels + bit_depth)
    chw = (rng.random((channels, 19, 23)) * 1.2 - 0.1).astype(np.float32)
    chw.flat[:4] = np.float32([0.5 / 255, 1.5 / 255, 2.5 / 255, 254.5 / 255])  # ties round to even
    for x in (chw, chw.astype(np.float64), chw[:, ::2, ::-1]):
        y = np.clip(x, 0.0, 1.0)
        y = y[0] if channels == 1 else y[::-1].transpose(1, 2, 0)  # what it computed before
        want = {8: lambda: np.round(y * 255.0).astype(np.uint8), 16: lambda: np.round(y * 65535.0).astype(np.uint16),
                32: lambda: y.astype(np.float32)}[bit_depth]()
        got = to_storage(x, bit_depth)
        assert got.dtype == want.dtype and np.array_equal(got, want) and got.flags.c_contiguous
