"""TemporalB2GNet -> ONNX, with the window layout in the metadata and a parity check.

The graph takes ``window`` (B, T*C, H, W) float32 in [0, 1] (T frames of C channels stacked in
time order, as :func:`~b2g_deploy.temporal.windows.stack_window` builds them) and returns the
denoised target frame ``output`` (B, C, H, W). Batch, height and width are dynamic: the wrapper
reflect-pads H and W up to the network's multiple inside the graph and crops back, written with
shape arithmetic so the tracer records it as graph ops (as ``modelfile.graph`` does for the
single-frame models).

The metadata uses the ``b2g.`` keys of single-frame exports but its own ``b2g.format``
("b2g-deploy/onnx-temporal"): a runtime that only knows single-frame models then refuses the
file as "not ours" instead of feeding it C-channel frames. ``b2g.window``, ``b2g.k``,
``b2g.causal`` and ``b2g.target_index`` tell a runtime how to fill a
:class:`~b2g_deploy.temporal.windows.RingBuffer`.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import CheckpointError, ParityError
from ..modelfile.graph import _pad_reflect  # the in-graph padding single-frame exports use
from .model import TemporalB2GNet

OPSET = 17
INPUT, OUTPUT = "window", "output"
FORMAT = "b2g-deploy/onnx-temporal"
PREFIX = "b2g."
PARITY_TOLERANCE = 1e-4  # max |ONNX Runtime - PyTorch|, fp32 on the CPU, [0, 1] units




class TemporalExportModule(nn.Module):
    """The deployable pass of a temporal net (target fully visible, eval mode) for any H, W."""

    def __init__(self, net: TemporalB2GNet):
        super().__init__()
        self.net = net.eval()

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        h, w = window.shape[-2], window.shape[-1]
        return self.net(_pad_reflect(window, self.net.multiple))[..., :h, :w]


@dataclass(frozen=True)
class TemporalExportMetadata:
    channels: int
    window: int  # frames per window, T
    k: int
    causal: bool
    target_index: int  # the target frame's slot in the window
    multiple: int
    align: str = "none"  # how a runtime prepares each window before the graph (temporal.align)
    opset: int = OPSET
    input_name: str = INPUT
    precision: str = "fp32"
    value_scaling: str = "0..1 float32"
    package_version: str = __version__
    format: str = FORMAT

    @classmethod
    def of(cls, net: TemporalB2GNet) -> "TemporalExportMetadata":
        k = (net.window - 1) // 2
        return cls(channels=net.channels, window=net.window, k=k,
                   causal=net.window > 1 and net.target_index == net.window - 1,
                   target_index=net.target_index, multiple=net.multiple, align=net.align)

    def to_props(self) -> dict[str, str]:
        return {PREFIX + key: str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], where: str) -> "TemporalExportMetadata":
        ours = {key[len(PREFIX):]: value for key, value in props.items() if key.startswith(PREFIX)}
        if ours.get("format") != FORMAT:
            raise CheckpointError(f"{where} is not a b2g-deploy temporal ONNX model")
        try:
            return cls(channels=int(ours["channels"]), window=int(ours["window"]), k=int(ours["k"]),
                       causal=ours["causal"] == "True", target_index=int(ours["target_index"]),
                       multiple=int(ours["multiple"]), align=ours.get("align", "none"), opset=int(ours["opset"]),
                       input_name=ours.get("input_name", INPUT), precision=ours.get("precision", "fp32"),
                       package_version=ours.get("package_version", ""))
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{where} has damaged b2g temporal metadata ({exc})") from None


@dataclass(frozen=True)
class TemporalExportResult:
    path: Path
    meta: TemporalExportMetadata
    max_abs_diff: float  # of the float32 graph against PyTorch
    int8_fidelity_db: float | None = None  # int8: PSNR of its outputs against the float32 graph's


def read_temporal_metadata(path: str | Path) -> TemporalExportMetadata:
    """The metadata of an exported temporal model (raises CheckpointError if it is not one)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return TemporalExportMetadata.from_props({p.key: p.value for p in model.metadata_props}, str(path))


def parity_window(net: TemporalB2GNet, seed: int = 0) -> np.ndarray:
    """A fixed (2, T*C, H, W) input: batch 2 and sides off the multiple exercise the dynamic axes."""
    m = net.multiple
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((2, net.window * net.channels, 2 * m + 5, 2 * m + 3), generator=gen).numpy()


def check_temporal_parity(model: bytes | str | Path, net: TemporalB2GNet, window: np.ndarray | None = None,
                          tolerance: float = PARITY_TOLERANCE) -> float:
    """max |ONNX Runtime CPU - PyTorch| on ``window``; raises ParityError above ``tolerance``."""
    import onnxruntime as ort

    x = parity_window(net) if window is None else np.ascontiguousarray(window, dtype=np.float32)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    source = str(model) if isinstance(model, (str, Path)) else model
    session = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    got = session.run([OUTPUT], {INPUT: x})[0]
    reference = copy.deepcopy(net).cpu().eval()
    with torch.no_grad():
        want = TemporalExportModule(reference)(torch.from_numpy(x)).numpy()
    if got.shape != want.shape:
        raise ParityError(f"ONNX Runtime output {got.shape} != PyTorch output {want.shape}")
    diff = float(np.abs(got - want).max())
    if not diff <= tolerance:  # also catches NaN
        raise ParityError(f"ONNX Runtime differs from PyTorch by {diff:.3g} (> {tolerance:g})")
    return diff


def calibration_windows(net: TemporalB2GNet, frames: np.ndarray, count: int | None = None,
                        max_pixels: int | None = None) -> list[np.ndarray]:
    """Inputs to calibrate an int8 graph on: windows of ``frames`` (N, C, H, W) in [0, 1], each
    aligned as a runtime aligns it (``net.align``), their targets and cut chosen by
    ``export.int8.calibration_plan`` (``count`` and ``max_pixels`` None: its defaults).

    Whole windows, not crops: the channel attention pools over the whole frame, so a crop shifts
    every channel's gain, and on the held-out mosaics three 384 x 384 squares of each window
    calibrated worse (-0.03 dB fused on the means, -0.07 on one; docs/BENCHMARKS.md, "Choosing
    the int8 recipe on held-out clips")."""
    from ..export.int8 import CALIBRATION_INPUTS, CALIBRATION_PIXELS, calibration_plan
    from .align import align_window
    from .windows import window_indices

    frames = np.asarray(frames, dtype=np.float32)
    n, c, h, w = frames.shape
    k, causal = (net.window - 1) // 2, net.window > 1 and net.target_index == net.window - 1
    targets, (rows, cols) = calibration_plan(n, h, w, count or CALIBRATION_INPUTS, max_pixels or CALIBRATION_PIXELS)
    out = []
    for t in targets:
        window = align_window(frames[window_indices(t, n, k, causal)].reshape(-1, h, w), c, net.target_index,
                              net.align)
        out.append(np.ascontiguousarray(window[None, :, rows, cols]))
    return out


def export_temporal_onnx(net: TemporalB2GNet, out: str | Path, parity_input: np.ndarray | None = None,
                         tolerance: float = PARITY_TOLERANCE,
                         int8: Sequence[np.ndarray] | None = None) -> TemporalExportResult:
    """Write ``out`` (replacing it atomically) after checking parity; a mismatch writes nothing.

    ``int8``: calibration inputs (``calibration_windows``); the graph is then quantized
    (``export.int8``) after the float32 parity check and written only if its outputs stay within
    ``export.int8.MIN_FIDELITY_DB`` of the float32 graph's on them."""
    import onnx

    out = Path(out)
    module = TemporalExportModule(copy.deepcopy(net).cpu().eval())
    m = net.multiple
    example = torch.rand(1, net.window * net.channels, 2 * m + 3, 2 * m + 5)  # odd: records the padding
    dyn_in = {0: "batch", 2: "height", 3: "width"}
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the tracer's shape-to-int warnings are expected here
            torch.onnx.export(
                module, (example,), str(raw), dynamo=False, opset_version=OPSET,
                input_names=[INPUT], output_names=[OUTPUT],
                dynamic_axes={INPUT: dyn_in, OUTPUT: dict(dyn_in)}, do_constant_folding=True,
            )
        model = onnx.load(str(raw))
    meta = TemporalExportMetadata.of(net)
    for key, value in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    diff = check_temporal_parity(data, net, parity_input, tolerance)
    fidelity = None
    if int8 is not None:
        from ..export.int8 import quantize_int8

        meta = replace(meta, precision="int8")
        quantized = quantize_int8(data, INPUT, OUTPUT, int8, props=meta.to_props())
        data, fidelity = quantized.model, quantized.fidelity_db
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp_name, out)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return TemporalExportResult(out, meta, diff, fidelity)


def export_temporal_checkpoint(checkpoint: str | Path, out: str | Path, force: bool = False,
                               int8_frames: np.ndarray | None = None) -> TemporalExportResult:
    """``export_temporal_onnx`` of a temporal checkpoint file (``b2g-deploy export`` calls this);
    with ``int8_frames`` (N, C, H, W) in [0, 1], frames of the video it will run on, an int8 graph
    calibrated on their windows.

    Raises CheckpointError if ``checkpoint`` holds a single-frame network (use
    ``export.onnx_export.export_onnx`` for those) and OutputExistsError if ``out`` exists
    without ``force``.
    """
    from ..checkpoint import load_checkpoint
    from ..errors import InputError
    from ..io.atomic import check_writable

    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"{out}: the ONNX output must end in .onnx")
    ckpt = load_checkpoint(checkpoint)
    if not isinstance(ckpt.net, TemporalB2GNet):
        raise CheckpointError(f"{checkpoint} holds a single-frame network, not a temporal one")
    check_writable(out, force)
    if int8_frames is None:
        return export_temporal_onnx(ckpt.net, out)
    from ..export.int8 import check_calibration_frames

    check_calibration_frames(int8_frames, ckpt.net.channels)
    return export_temporal_onnx(ckpt.net, out, int8=calibration_windows(ckpt.net, int8_frames))
