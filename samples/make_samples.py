"""Recreates the bundled samples from ../shared/data (METHOD.md section 6 noise conventions).

kodim03_256_clean.png: kodim03 rows 128..383, columns 256..511 (8-bit RGB).
kodim03_256_sigma25.png: that crop plus Gaussian noise sigma 25/255, seed 0, stored as 8-bit
PNG (clipped and rounded: a file on disk cannot hold the unclipped float values).
"""

from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "data" / "Kodak24" / "kodim03.png"


def main() -> None:
    clean = cv2.imread(str(SOURCE))[128:384, 256:512].astype(np.float32) / 255.0
    noisy = clean + np.random.default_rng(0).normal(0.0, 25.0 / 255.0, clean.shape)
    cv2.imwrite(str(HERE / "kodim03_256_clean.png"), np.round(clean * 255).astype(np.uint8))
    cv2.imwrite(str(HERE / "kodim03_256_sigma25.png"), np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8))


if __name__ == "__main__":
    main()
