"""Nothing depends on the machine the package was written on: no absolute paths in the code or
the tests, and the parity image ships inside the package."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
# A quote right before one of the machine-specific roots (work, home, tmp) as an absolute path.
ABSOLUTE = re.compile("[\"']/(?:" + "|".join(["wo" + "rk", "ho" + "me", "t" + "mp"]) + ")/")


def test_no_absolute_paths_in_string_literals():
    hits = []
    for folder in ("b2g_deploy", "tests"):
        for path in sorted((ROOT / folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:  # images, checkpoints
                continue
            hits += [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
                     for n, line in enumerate(text.splitlines(), 1) if ABSOLUTE.search(line)]
    assert hits == []


def test_the_scan_finds_what_it_looks_for():
    assert ABSOLUTE.search("KODAK = Path('" + "/wo" + "rk/shared/x.png')")
    assert ABSOLUTE.search('open("' + "/t" + 'mp/x")')
    assert not ABSOLUTE.search("tmp_path / 'x.png'") and not ABSOLUTE.search('"a/work/b"')


def test_parity_image_is_package_data():
    from importlib import resources

    from b2g_deploy.export.parity import PARITY_IMAGE, PARITY_SIZE, clean_parity_image, parity_image

    shipped = resources.files("b2g_deploy").joinpath("data", PARITY_IMAGE)
    assert shipped.is_file()
    clean = clean_parity_image()
    assert clean.shape == (3, 256, 256) and clean.std() > 0.1  # a photograph, not a flat stand-in
    x = parity_image(3)
    assert x.shape == (1, 3, *PARITY_SIZE) and x.dtype == np.float32
    np.testing.assert_array_equal(x, parity_image(3))  # deterministic
    # Sizes above the shipped 256x256 are mirrored out; the centre is the photograph (plus noise).
    big = parity_image(1, (300, 400))
    assert big.shape == (1, 1, 300, 400)
    small = parity_image(3, (40, 56))[0]
    centre = clean[:, 108:148, 100:156]
    assert np.abs(small - centre).mean() < 0.1  # sigma-25 noise, clipped: mean |n| ~ 0.08
