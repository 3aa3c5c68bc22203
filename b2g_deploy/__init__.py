"""b2g-deploy: fit Blind2Grad to an image or a few frames, export it, denoise video fast."""

__version__ = "0.1.0"
