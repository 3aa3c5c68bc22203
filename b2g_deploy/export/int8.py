"""Static int8 quantization of an exported ONNX graph, for ONNX Runtime on a CPU.

Why: on one CPU core a 720p window takes the temporal network ~1.1 s in float32, most of it in
the trunk's 3x3 convolutions, and that sets the pace of a video stream there. ONNX Runtime runs
those convolutions in int8 (unsigned 8-bit activations, signed 8-bit weights per output channel;
VNNI where the CPU has it): the network ~1.5x faster (docs/BENCHMARKS.md, "int8 on the CPU").
ONNX Runtime's own quantizer (``onnxruntime.quantization``, part of the onnxruntime package the
project already needs) writes the graph: it is maintained with the kernels that run it, and it
knows which patterns the CPU provider fuses into integer convolutions.

What is quantized, and how, was chosen on held-out clips, never on a reported set
(docs/BENCHMARKS.md, "Choosing the int8 recipe on held-out clips"): only the trunk's 3x3
convolutions (the encoder's ``down.*`` and the decoder stages' ``convs``). The head, which reads
the frames (and the partial convolution's visibility count), the channel attention's small 1x1
layers and the tail, which writes the image, stay float32: with every convolution in int8 the
output fell to ~20 dB, with all but the head and tail to ~22. Activation ranges come
from calibration inputs (windows of the clip itself) at the 99.999th percentile, so a few
outliers do not stretch the 8-bit grid.

The quantized graph is judged against the float32 one on the calibration inputs: the PSNR of the
int8 outputs against the float32 outputs must reach ``MIN_FIDELITY_DB``, else nothing is written
(ParityError).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import MissingPackageError, ParityError

# Which convolutions are quantized: ONNX node names from the exporter's module scopes
# (".../down.0/down.0.0/Conv", ".../up.3/convs/convs.1/convs.1.0/Conv").
TRUNK_SCOPES = ("/down.", "/convs/")
CALIBRATION_PERCENTILE = 99.999
# int8 against float32 outputs, PSNR on [0, 1] frames. The temporal fits of the cockatoo clip
# measured 48.4 / 47.1 dB here at sigma 25 / 50 (docs/BENCHMARKS.md, "int8 on the CPU"): an error
# 16-44x smaller in power than the denoiser's own (36.2 / 30.6 dB against the clean frames). A graph under 40 dB has gone wrong (every
# convolution in int8 measured ~20 dB against the clean frames), not merely lost precision.
MIN_FIDELITY_DB = 40.0


# Calibration inputs: up to 3 frames (or windows) spread over the frames given, whole (the channel
# attention pools over the whole frame, so crops shift its gains), 3 720p frames' pixels in all:
# more inputs cost calibration time, and one input's activations (~3.5 GB for a 720p window) are
# held at a time.
CALIBRATION_INPUTS, CALIBRATION_PIXELS = 3, 3 * 1280 * 720


def calibration_plan(n: int, h: int, w: int, count: int = CALIBRATION_INPUTS,
                     max_pixels: int = CALIBRATION_PIXELS) -> tuple[list[int], tuple[slice, slice]]:
    """Which of ``n`` frames of h x w calibrate, and the cut of each: up to ``count`` frames spread
    over the clip (first and last included), ``max_pixels`` pixels in all, so fewer frames when
    they are large, and one frame cut around its centre (aspect kept) when one alone is larger."""
    count = max(1, min(count, max_pixels // (h * w)))
    picks = sorted({round(i * (n - 1) / max(count - 1, 1)) for i in range(count)}) if n > 1 else [0]
    shrink = min(1.0, (max_pixels / (h * w)) ** 0.5)
    a, b = max(1, int(h * shrink)), max(1, int(w * shrink))
    top, left = (h - a) // 2, (w - b) // 2
    return picks, (slice(top, top + a), slice(left, left + b))


def calibration_frames(frames: np.ndarray) -> list[np.ndarray]:
    """A single-frame graph's calibration inputs: (1, C, h, w) frames of ``frames`` (N, C, H, W) in
    [0, 1], chosen and cut by ``calibration_plan``."""
    frames = np.asarray(frames, dtype=np.float32)
    picks, (rows, cols) = calibration_plan(*frames.shape[:1], *frames.shape[2:])
    return [np.ascontiguousarray(frames[t][None, :, rows, cols]) for t in picks]


@dataclass(frozen=True)
class Int8Result:
    model: bytes  # the quantized graph, with the float32 graph's metadata and ``props`` applied
    fidelity_db: float  # PSNR of its outputs against the float32 graph's on the calibration inputs
    quantized: int  # convolutions that run in int8


def check_calibration_frames(frames: np.ndarray, channels: int) -> None:
    """Calibration frames must be (N, C, H, W) with the model's C: an InputError otherwise."""
    from ..errors import InputError

    if frames.ndim != 4 or frames.shape[1] != channels:
        raise InputError(f"int8 calibration needs {channels}-channel frames, got shape {tuple(frames.shape)}")


def calibration_reader(input_name: str, feeds: Sequence[np.ndarray]):
    """ORT's CalibrationDataReader over ``feeds``, one input per ``get_next``. It also takes
    ``set_range``, so the calibrator can be handed the inputs a few at a time ("CalibStridedMinMax"):
    it keeps every activation of the inputs it is given at once (~3.5 GB a 720p window) and
    merges each pass into its histograms, so one input a pass bounds the memory (an export of a
    720p temporal model peaked at 11.3 GB with three windows in one pass)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Feeds(CalibrationDataReader):
        def __init__(self):
            self._left = iter(feeds)

        def __len__(self):
            return len(feeds)

        def set_range(self, start_index: int, end_index: int):
            self._left = iter(feeds[start_index:end_index])

        def get_next(self):
            x = next(self._left, None)
            return None if x is None else {input_name: x}

    return Feeds()


def trunk_convolutions(model) -> list[str]:
    """Names of the Conv nodes ``quantize_int8`` quantizes (an onnx ModelProto)."""
    return [node.name for node in model.graph.node
            if node.op_type == "Conv" and any(scope in node.name for scope in TRUNK_SCOPES)]


def quantize_int8(model: bytes, input_name: str, output_name: str, calibration: Sequence[np.ndarray],
                  props: dict[str, str] | None = None,
                  min_fidelity_db: float = MIN_FIDELITY_DB) -> Int8Result:
    """The float32 graph ``model`` (serialized) with its trunk convolutions in int8, calibrated on
    ``calibration`` (inputs of ``input_name``, each a batch the graph accepts). ``props``: metadata
    entries to set on the result (e.g. its precision). Raises ParityError when its outputs stray
    from the float32 graph's by more than ``min_fidelity_db`` allows."""
    if not calibration:
        raise ValueError("int8 quantization needs at least one calibration input")
    try:
        import onnx
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:  # onnxruntime is a core dependency; a broken install names it
        raise MissingPackageError("onnxruntime") from None

    feeds = [np.ascontiguousarray(x, dtype=np.float32) for x in calibration]

    with tempfile.TemporaryDirectory() as tmp, _quiet():
        raw, prepared, out = (Path(tmp) / name for name in ("fp32.onnx", "pre.onnx", "int8.onnx"))
        raw.write_bytes(model)
        # Shape inference and ORT's basic graph optimizations first, as its quantizer recommends:
        # the convolutions' output ranges are then those of the graph that runs.
        quant_pre_process(str(raw), str(prepared), skip_symbolic_shape=True)
        nodes = trunk_convolutions(onnx.load(str(prepared)))
        if not nodes:
            raise ParityError("no trunk convolutions to quantize in this graph (not a b2g-deploy export?)")
        quantize_static(str(prepared), str(out), calibration_reader(input_name, feeds), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        nodes_to_quantize=nodes, calibrate_method=CalibrationMethod.Percentile,
                        # "CalibStridedMinMax" is ORT's name for collecting in passes of N inputs;
                        # it applies to every calibration method, the percentile's too.
                        extra_options={"CalibPercentile": CALIBRATION_PERCENTILE, "CalibStridedMinMax": 1})
        quantized = onnx.load(str(out))
    source = onnx.load_from_string(model)
    entries = {p.key: p.value for p in source.metadata_props} | dict(props or {})
    del quantized.metadata_props[:]
    for key, value in entries.items():
        entry = quantized.metadata_props.add()
        entry.key, entry.value = key, value
    data = quantized.SerializeToString()
    fidelity = _fidelity_db(model, data, input_name, output_name, feeds)
    if not fidelity >= min_fidelity_db:  # also catches NaN
        raise ParityError(f"the int8 graph's output differs from the float32 graph's: PSNR {fidelity:.1f} dB "
                          f"between them (< {min_fidelity_db:g})")
    return Int8Result(data, fidelity, len(nodes))


def _fidelity_db(fp32: bytes, int8: bytes, input_name: str, output_name: str, feeds: list[np.ndarray]) -> float:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    runs = [ort.InferenceSession(m, opts, providers=["CPUExecutionProvider"]) for m in (fp32, int8)]
    squared, count = 0.0, 0
    for x in feeds:
        want, got = (s.run([output_name], {input_name: x})[0].astype(np.float64) for s in runs)
        squared += float(((got - want) ** 2).sum())
        count += want.size
    mse = squared / max(count, 1)
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


@contextlib.contextmanager
def _quiet():
    """ORT's quantizer prints its calibration progress and logs advice; a command prints its own."""
    log = logging.getLogger()
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        log.setLevel(level)
