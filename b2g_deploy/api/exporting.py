"""api.export: a checkpoint to ONNX (parity-checked), optionally a TensorRT engine and a Triton
model repository; and the one checked engine build that ``export`` and the video flow share.

Every output is checked before any work (a bad engine suffix, an existing file, a missing
TensorRT or GPU), and nothing untrusted is left on disk: a failed parity check removes what it
checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError


@dataclass
class EngineReport:
    """A TensorRT engine built and checked against PyTorch."""

    path: Path
    tensorrt_version: str
    gpu_name: str
    profile: str  # the profile, described (min/opt/max shapes)
    fp16: bool
    parity: str  # the parity check, one line
    temporal: bool = False  # built from a temporal export: windows in, the target frame out


@dataclass
class TritonReport:
    repo: Path
    name: str
    version: int
    platform: str
    max_batch: int
    instance_kind: str


@dataclass
class ExportReport:
    """What :func:`export` wrote. ``onnx`` is None when the ONNX model went only into the
    Triton repository; ``description`` says what the ONNX graph is (mode, precision, opset)."""

    onnx: Path | None
    description: str
    parity: str  # the ONNX parity check, one line
    temporal: bool = False
    engine: EngineReport | None = None
    triton: TritonReport | None = None


def parse_profile(channels: int, min_shape: str, opt_shape: str, max_shape: str, window: int = 1):
    """The TensorRT profile from ``BxCxHxW`` texts, where ``C`` stands for the model's channels
    (those of one frame).

    A temporal model (``window`` > 1 frames) takes stacked windows of ``window * channels``
    channels: the profile's channel dimension is that, so C (or the number of a frame's
    channels) is multiplied by the window; the window's own count is accepted as written too.
    """
    from ..export.engine_sidecar import Profile, parse_shape

    whole = channels * window
    dims = []
    for text, name in zip((min_shape, opt_shape, max_shape), ("min", "opt", "max")):
        shape = parse_shape(text.replace("C", str(channels)).replace("c", str(channels)), None, f"--{name}-shape")
        if shape[1] not in (channels, whole):
            frames = f" a frame ({whole} for the {window}-frame window)" if window > 1 else ""
            raise InputError(f"--{name}-shape '{text}' has {shape[1]} channels; the model has {channels}{frames}")
        dims.append((shape[0], whole, *shape[2:]))
    return Profile(*dims)


def check_engine_target(trt: Path, force: bool) -> None:
    """Before any work: a usable engine name, TensorRT and a GPU present, outputs writable."""
    from ..export.engine_sidecar import current_gpu, sidecar_path
    from ..export.tensorrt_build import import_tensorrt
    from ..io.atomic import check_writable

    if trt.suffix.lower() not in (".engine", ".plan"):
        raise InputError(f"{trt}: the engine output must end in .engine")
    import_tensorrt(), current_gpu()  # a missing package or GPU fails now, before any output
    check_writable(trt, force)
    check_writable(sidecar_path(trt), force)


def build_checked_engine(checkpoint: Path, onnx: Path, trt: Path, profile: Any, *, fp16: bool = False,
                         seed: int = 0, timing_cache: Path | None = None, force: bool = False) -> EngineReport:
    """Build ``trt`` from ``onnx`` and check it against the checkpoint's PyTorch network on the
    parity image; a failed check removes the engine and its sidecar (ParityError).

    Single-frame and temporal models alike: for a temporal ONNX export ``profile``'s channel
    dimension is the window's (``parse_profile(..., window=)``), the sidecar records the window
    and the check runs the temporal network on a window made from the parity image."""
    from ..export.engine_sidecar import sidecar_path
    from ..export.tensorrt_build import build_engine, engine_parity
    from ..runtimes.trt_runtime import TrtRuntime, TrtTemporalRuntime

    built = build_engine(onnx, trt, profile, fp16=fp16, timing_cache=timing_cache, force=force)
    try:
        with (TrtTemporalRuntime if built.sidecar.is_temporal else TrtRuntime)(trt) as engine:
            report = engine_parity(engine, checkpoint, seed=seed)
    except BaseException:
        # A failed check leaves no engine behind: nothing untrusted stays on disk.
        trt.unlink(missing_ok=True)
        sidecar_path(trt).unlink(missing_ok=True)
        raise
    t = built.sidecar.temporal
    described = built.sidecar.profile.describe()
    if t is not None:
        described += f" ({t['window']}-frame windows of {built.sidecar.channels} channels)"
    return EngineReport(built.engine, built.sidecar.tensorrt_version, built.sidecar.gpu_name,
                        described, fp16, report.line(), temporal=t is not None)


def export(
    checkpoint: Path,
    onnx: Path | None = None,
    *,
    mode: str = "single",
    passes: int = 8,
    fp16: bool = False,
    seed: int = 0,
    trt: Path | None = None,
    min_shape: str = "1xCx64x64",
    opt_shape: str = "1xCx720x1280",
    max_shape: str = "1xCx1088x1920",
    timing_cache: Path | None = None,
    triton: Path | None = None,
    name: str = "b2g_denoiser",
    version: int = 1,
    max_batch: int | None = None,
    int8: bool = False,
    calibrate: Path | str | None = None,
    calibration_frames: Any = None,
    force: bool = False,
) -> ExportReport:
    """Export ``checkpoint`` to ONNX and check it against PyTorch; with ``trt`` also build and
    check a TensorRT engine (profile shapes ``BxCxHxW``, C = the model's channels); with
    ``triton`` also write a Triton model repository (model.plan with ``trt``, else model.onnx;
    ``max_batch`` None = 8, or the engine profile's maximum batch). Without ``onnx`` the ONNX
    model goes only into the Triton repository.

    A temporal checkpoint exports its window-in, frame-out graph (fp32, single pass) and, with
    ``trt``, an engine from it: C still means a frame's channels, the profile takes the window
    (T*C channels). ``fp16`` then applies to the engine only (TensorRT may run layers in half;
    the ONNX graph stays fp32), so it needs ``trt``; the engine is judged by the fp16 bound.

    ``int8`` (for ONNX Runtime on a CPU): the trunk's convolutions in int8 (``export.int8``),
    calibrated on the first ``CALIBRATION_FRAMES`` frames (a temporal model: their windows) of
    ``calibrate`` (a video, an image sequence or an image), or on ``calibration_frames`` (N, C,
    H, W) in [0, 1] when the caller has them (the one-command video flow passes the frames it
    fitted on)."""
    checkpoint, onnx = Path(checkpoint), None if onnx is None else Path(onnx)
    if onnx is None and triton is None:
        raise InputError("give --onnx OUT.onnx, --triton REPO, or both")
    if onnx is not None and onnx.suffix.lower() != ".onnx":
        raise InputError(f"{onnx}: the ONNX output must end in .onnx")
    if triton is not None:
        from ..export.triton_repo import DEFAULT_MAX_BATCH, check_triton_target

        # before any work; with trt and no max_batch the engine profile decides, checked below
        check_triton_target(triton, name, version, DEFAULT_MAX_BATCH if max_batch is None else max_batch, force)
    if (calibrate is not None or calibration_frames is not None) and not int8:
        raise InputError("--calibrate is for --int8 exports")
    if int8 and calibrate is None and calibration_frames is None:
        raise InputError("--int8 needs --calibrate VIDEO: frames like those the model will denoise")
    if int8 and trt is not None:
        raise InputError("--int8 writes a graph for ONNX Runtime on a CPU; a TensorRT engine is built from the "
                         "float32 graph: drop --int8 or --trt")
    options = dict(mode=mode, passes=passes, fp16=fp16, seed=seed, trt=trt, min_shape=min_shape,
                   opt_shape=opt_shape, max_shape=max_shape, timing_cache=timing_cache, triton=triton,
                   triton_name=name, triton_version=version, max_batch=max_batch, int8=int8, calibrate=calibrate,
                   calibration_frames=calibration_frames, force=force)
    if onnx is not None:
        return _export(checkpoint, onnx, temporary=False, **options)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return _export(checkpoint, Path(tmp) / "model.onnx", temporary=True, **options)


def _export(checkpoint: Path, onnx: Path, *, temporary: bool, mode: str, passes: int, fp16: bool, seed: int,
            trt: Path | None, min_shape: str, opt_shape: str, max_shape: str, timing_cache: Path | None,
            triton: Path | None, triton_name: str, triton_version: int, max_batch: int | None,
            int8: bool, calibrate: Path | str | None, calibration_frames: Any, force: bool) -> ExportReport:
    from ..checkpoint import checkpoint_is_temporal, load_checkpoint, temporal_settings
    from ..export.onnx_export import export_onnx

    temporal = checkpoint_is_temporal(checkpoint)
    if temporal:
        _check_temporal_options(mode, fp16, trt)
    profile = None
    if trt is not None:  # every check before any work
        check_engine_target(trt, force)
        ckpt = load_checkpoint(checkpoint)
        window = temporal_settings(ckpt.net)["window"] if temporal else 1
        profile = parse_profile(ckpt.channels, min_shape, opt_shape, max_shape, window=window).validate(
            ckpt.net.multiple)
        if triton is not None and max_batch is None:
            max_batch = profile.max[0]
        elif triton is not None and max_batch > profile.max[0]:
            raise InputError(f"--max-batch {max_batch} exceeds the engine profile's maximum batch "
                             f"{profile.max[0]} (raise it with --max-shape)")
    int8_frames = calibration_frames  # export() refused frames without int8
    if int8 and int8_frames is None:
        int8_frames = _calibration_frames(calibrate, load_checkpoint(checkpoint).channels)
    if temporal:
        report = _export_temporal(checkpoint, onnx, force, int8_frames)
        if trt is not None:
            report.engine = build_checked_engine(checkpoint, report.onnx, trt, profile, fp16=fp16, seed=seed,
                                                 timing_cache=timing_cache, force=force)
    else:
        result = export_onnx(checkpoint, onnx, mode=mode, passes=passes, fp16=fp16, seed=seed, force=force,
                             int8_frames=int8_frames)
        m = result.meta
        report = ExportReport(result.path, f"{m.mode}, {m.passes} pass(es), {m.precision}, opset {m.opset}"
                              f"{', simplified' if result.simplified else ''}",
                              result.parity.line() + _int8_line(result.int8_fidelity_db))
        if trt is not None:
            report.engine = build_checked_engine(checkpoint, result.path, trt, profile, fp16=fp16, seed=seed,
                                                 timing_cache=timing_cache, force=force)
    if triton is not None:
        report.triton = _write_triton(report.onnx, trt, triton, triton_name, triton_version, max_batch, force)
    if temporary:
        report.onnx = None  # it lived in a temporary folder: only the Triton copy remains
    return report


def _check_temporal_options(mode: str, fp16: bool, trt: Path | None) -> None:
    if mode != "single":
        raise InputError("a temporal checkpoint exports a single pass (no --mode ensemble)")
    if fp16 and trt is None:
        raise InputError("--fp16 of a temporal checkpoint applies to its TensorRT engine (the temporal ONNX "
                         "graph is fp32): add --trt OUT.engine, or drop --fp16")


# Frames of the --calibrate video read for an int8 export: the windows are spread over them.
CALIBRATION_FRAMES = 8


def _calibration_frames(calibrate: Path | str, channels: int):
    """The first frames of ``calibrate``: a video or image sequence, or one image."""
    import numpy as np

    from ..io.images import IMAGE_SUFFIXES, read_image
    from ..io.video_readers import read_frames

    if Path(calibrate).suffix.lower() in IMAGE_SUFFIXES and Path(calibrate).is_file():
        image, info = read_image(calibrate)
        if info.channels != channels:
            raise InputError(f"--calibrate {calibrate} has {info.channels} channel(s); the model has {channels}")
        return image[None].astype(np.float32)
    frames = read_frames(calibrate, limit=CALIBRATION_FRAMES, channels=channels)
    if not frames:
        raise InputError(f"--calibrate {calibrate}: no frames could be read")
    if len({f.shape for f in frames}) > 1:
        raise InputError(f"--calibrate {calibrate}: the frame size changes within its first frames")
    return np.stack(frames)


def _int8_line(fidelity_db: float | None) -> str:
    """The int8 graph's check, appended to the float32 graph's parity line."""
    return "" if fidelity_db is None else f"; int8 against fp32: PSNR {fidelity_db:.1f} dB on the calibration inputs"


def _export_temporal(checkpoint: Path, onnx: Path, force: bool, int8_frames: Any = None) -> ExportReport:
    """A temporal checkpoint: a window-in, frame-out graph (single pass), parity-checked; with
    ``int8_frames``, quantized to int8 and checked against the float32 graph."""
    from ..temporal.export import export_temporal_checkpoint

    result = export_temporal_checkpoint(checkpoint, onnx, force=force, int8_frames=int8_frames)
    m = result.meta
    parity = f"max |ONNX Runtime - PyTorch| {result.max_abs_diff:.2e} (CPU, fp32)" + _int8_line(result.int8_fidelity_db)
    return ExportReport(result.path, f"temporal, {m.window}-frame {'causal' if m.causal else 'centred'} window,"
                        f" k {m.k}, {m.precision}, opset {m.opset}", parity, temporal=True)


def _write_triton(onnx: Path, plan: Path | None, repo: Path, name: str, version: int, max_batch: int | None,
                  force: bool) -> TritonReport:
    from ..export.triton_repo import DEFAULT_MAX_BATCH, write_triton_repo

    model = write_triton_repo(onnx, repo, name=name, version=version, plan=plan, force=force,
                              max_batch=DEFAULT_MAX_BATCH if max_batch is None else max_batch)
    return TritonReport(model.repo, model.name, model.version, model.platform, model.max_batch,
                        model.instance_kind)
