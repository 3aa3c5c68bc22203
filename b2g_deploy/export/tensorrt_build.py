"""ONNX -> TensorRT engine with the TensorRT Python API, saved with its sidecar.

TensorRT is imported inside the functions: the package works without it, and the builder is
tested against a stand-in module. Each step that can fail says why in one exception: every
parser error at once (not just the first), a build that returns nothing, a timing cache that
does not load.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, EngineBuildError, InputError
from ..io.atomic import atomic_path, check_writable
from ..modelfile.engine_sidecar import EngineSidecar, Profile, current_gpu, sidecar_path, temporal_fields
from ..modelfile.onnx_metadata import read_onnx_metadata
from ..modelfile.optional import import_tensorrt

__all__ = ["BuildResult", "OnnxFacts", "build_engine", "engine_parity", "import_tensorrt", "onnx_facts"]

WORKSPACE_BYTES = 4 << 30  # room for the convolution tactics at 1080p; TensorRT uses less if it can


@dataclass(frozen=True)
class BuildResult:
    engine: Path
    sidecar: EngineSidecar
    timing_cache_saved: bool


def _parse(trt, builder, logger, onnx_path: Path):
    # Explicit batch is the only mode in TensorRT 10 (the flag is gone); older versions need it.
    flag = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)
    network = builder.create_network(0 if flag is None else 1 << int(flag))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)] or ["unknown parser error"]
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: " + " | ".join(errors))
    return network, parser


def _config(trt, builder, network, profile: Profile, fp16: bool, cache_bytes: bytes | None):
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    opt = builder.create_optimization_profile()
    opt.set_shape(network.get_input(0).name, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(opt)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    else:
        # TF32 convolutions are on by default and break the fp32 parity bound (1e-4).
        config.clear_flag(trt.BuilderFlag.TF32)
    cache = config.create_timing_cache(cache_bytes or b"")
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        raise EngineBuildError("the timing cache could not be loaded; delete it and build again")
    return config


@dataclass(frozen=True)
class OnnxFacts:
    """What the builder needs from a b2g-deploy ONNX file, single-frame or temporal."""

    channels: int  # a frame's
    multiple: int
    model: dict[str, str]  # its b2g metadata, prefix dropped (the sidecar's ``model``)
    temporal: dict | None  # temporal_fields of a temporal export, else None

    @property
    def input_channels(self) -> int:
        return self.channels * (self.temporal["window"] if self.temporal else 1)


def onnx_facts(onnx_path: str | Path) -> OnnxFacts:
    """The metadata of a single-frame or temporal export (CheckpointError if neither)."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends: corrupt or not ONNX at all
        raise CheckpointError(f"{onnx_path} is not a readable ONNX file ({type(exc).__name__})") from None
    props = {p.key: p.value for p in model.metadata_props}
    from ..temporal.export import FORMAT as TEMPORAL_FORMAT
    from ..temporal.export import PREFIX, TemporalExportMetadata

    if props.get(PREFIX + "format") == TEMPORAL_FORMAT:
        t = TemporalExportMetadata.from_props(props, str(onnx_path))
        return OnnxFacts(t.channels, t.multiple, {k[len(PREFIX):]: v for k, v in t.to_props().items()},
                         temporal_fields(t.window, t.k, t.causal, t.target_index, t.align))
    meta = read_onnx_metadata(str(onnx_path))
    return OnnxFacts(meta.channels, meta.multiple, {k[4:]: v for k, v in meta.to_props().items()}, None)


def build_engine(
    onnx_path: str | Path,
    out: str | Path,
    profile: Profile,
    fp16: bool = False,
    timing_cache: str | Path | None = None,
    force: bool = False,
) -> BuildResult:
    """Build ``out`` (and ``out.json``) from a b2g-deploy ONNX file; nothing is written on failure.

    ``profile``'s channel dimension is the model's input channels: a frame's, or for a temporal
    export the stacked window's (frames x channels; ``api.exporting.parse_profile`` makes it)."""
    onnx_path, out = Path(onnx_path), Path(out)
    check_writable(out, force)
    check_writable(sidecar_path(out), force)
    facts = onnx_facts(onnx_path)
    profile = profile.validate(facts.multiple)
    if profile.min[1] != facts.input_channels:
        window = f" ({facts.temporal['window']} frames x {facts.channels} channels)" if facts.temporal else ""
        raise InputError(f"the profile has {profile.min[1]} channels; {onnx_path} takes "
                         f"{facts.input_channels}{window}")
    trt = import_tensorrt()
    gpu = current_gpu()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    cache_file = Path(timing_cache) if timing_cache else None
    if cache_file is not None and not cache_file.parent.is_dir():
        raise InputError(f"the folder {cache_file.parent} for the timing cache does not exist")
    cache_bytes = cache_file.read_bytes() if cache_file and cache_file.is_file() else None
    config = _config(trt, builder, network, profile, fp16, cache_bytes)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError("TensorRT returned no engine (see its log above); check the shapes and workspace")
    sidecar = EngineSidecar(
        tensorrt_version=trt.__version__, gpu_name=gpu[0], compute_capability=gpu[1], profile=profile,
        fp16=fp16, channels=facts.channels, model=facts.model, temporal=facts.temporal,
    )
    with atomic_path(out) as tmp_engine, atomic_path(sidecar_path(out)) as tmp_json:
        tmp_engine.write_bytes(bytes(serialized))
        tmp_json.write_text(sidecar.to_json())
    saved = False
    if cache_file is not None:  # the cache makes the next build seconds instead of minutes
        with atomic_path(cache_file) as tmp_cache:
            tmp_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
        saved = True
    return BuildResult(out, sidecar, saved)


def engine_parity(runtime: Any, checkpoint: str | Path, seed: int = 0):
    """TensorRT against the fp32 PyTorch wrapper on the parity image, sized into the profile.

    ``runtime`` is the engine, loaded: a ``runtimes.trt_runtime.TrtRuntime`` (anything with its
    ``info``, ``sidecar`` and ``infer``); export writes engines, the runtimes layer loads them.
    fp32 engines are built without TF32 and must meet the fp32 bound; fp16 ones the PSNR bound.
    A temporal engine (``sidecar.temporal``; the runtime has ``infer_windows``) is checked against
    the checkpoint's temporal network on a window of shifted, independently noisy copies of the
    parity image (``parity.parity_image_window``).
    """
    from ..checkpoint import load_checkpoint
    from .onnx_export import torch_reference
    from .parity import PARITY_SIZE, check_parity, parity_image

    info, sidecar = runtime.info, runtime.sidecar
    ckpt = load_checkpoint(checkpoint, channels=info.channels)
    prof = sidecar.profile
    # The parity image sized into the profile: an engine built for one frame size (the video
    # flow's: min = max = the frame) cannot run anything smaller or larger.
    size = tuple(min(max(want, prof.min[axis]), prof.max[axis]) for axis, want in zip((2, 3), PARITY_SIZE))
    precision = "fp16" if sidecar.fp16 else "fp32"
    if getattr(sidecar, "temporal", None):
        return _temporal_engine_parity(runtime, ckpt, checkpoint, size, prof.min[0], precision)
    if ckpt.is_temporal:
        raise CheckpointError(f"{checkpoint} holds a temporal network; this engine is single-frame")
    x = np.repeat(parity_image(info.channels, size), prof.min[0], axis=0)
    ref = torch_reference(ckpt.net, info.mode, info.passes, ckpt.config.mask.rate, seed, x)
    return check_parity("TensorRT", runtime.infer, ref, x, precision)


def _temporal_engine_parity(runtime: Any, ckpt: Any, checkpoint: str | Path, size: tuple[int, int], batch: int,
                            precision: str):
    """A temporal engine against ``TemporalExportModule`` (fp32, CPU) of the checkpoint's net."""
    import torch

    from ..checkpoint import temporal_settings
    from ..temporal.export import TemporalExportModule
    from .parity import check_parity, parity_image_window

    if not ckpt.is_temporal:
        raise CheckpointError(f"{checkpoint} holds a single-frame network; this engine is temporal")
    t = runtime.sidecar.temporal
    settings = temporal_settings(ckpt.net)
    if (settings["window"], settings["k"], settings["causal"]) != (t["window"], t["k"], t["causal"]):
        raise CheckpointError(f"{checkpoint} reads {settings['window']}-frame windows (k {settings['k']}, causal "
                              f"{settings['causal']}); the engine was built for {t['window']} (k {t['k']}, "
                              f"causal {t['causal']})")
    x = np.repeat(parity_image_window(ckpt.channels, t["window"], size), batch, axis=0)
    with torch.no_grad():
        ref = TemporalExportModule(copy.deepcopy(ckpt.net).cpu().float()).eval()(torch.from_numpy(x)).numpy()
    return check_parity("TensorRT", runtime.infer_windows, ref, x, precision)
