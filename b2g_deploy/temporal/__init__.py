"""Multi-frame (temporal) Blind2Grad: a window of frames in, the denoised target frame out.

A video's neighbouring frames show the same scene with independent noise, so a network that
sees them can average noise away that a single frame cannot. The target frame still goes
through the blind-spot head (it is the only frame whose noise the loss must not see); the
neighbours go through a plain convolution. Modules:

- ``model``: :class:`TemporalB2GNet`, built from :class:`b2g_deploy.model.B2GNet`'s pieces.
- ``windows``: which frames form the window of frame t, and a streaming :class:`RingBuffer`.
- ``fit``: :func:`fit_temporal`, the per-clip fit, and :class:`TemporalConfig`.
- ``noise_check``: is the noise independent from frame to frame? (If not, stay single-frame.)
- ``export``: ONNX export with the window size in the metadata, and a parity check.
"""
