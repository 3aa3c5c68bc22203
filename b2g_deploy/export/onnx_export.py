"""Checkpoint -> ONNX: trace the wrapper, simplify, stamp metadata, check parity, write atomically.

The TorchScript exporter (``dynamo=False``) is used: it records the padding arithmetic on
``x.shape`` as graph ops, so batch, height and width stay dynamic, and it exports this network
in well under a second. The opset is pinned so a model made today loads the same way later.
"""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import file_sha256, load_checkpoint
from ..errors import CheckpointError, InputError, ParityError
from ..io.atomic import atomic_path, check_writable
from ..modelfile.graph import build_module, check_mode
from ..modelfile.onnx_metadata import ExportMetadata, write_props
from .parity import ParityReport, check_parity, parity_image

OPSET = 17
INPUT, OUTPUT = "input", "output"
RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli",
              "Multinomial", "Dropout"}


@dataclass(frozen=True)
class ExportResult:
    path: Path
    meta: ExportMetadata
    parity: ParityReport  # of the float32 (or fp16) graph against PyTorch
    simplified: bool
    int8_fidelity_db: float | None = None  # int8: PSNR of its outputs against the float32 graph's


def _trace(module: torch.nn.Module, channels: int, multiple: int, path: Path) -> None:
    example = torch.rand(1, channels, multiple * 2 + 3, multiple * 2 + 5)  # odd: exercises the padding
    dyn = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's int-conversion warnings are expected here
        torch.onnx.export(
            module, (example,), str(path), dynamo=False, opset_version=OPSET,
            input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: dyn, OUTPUT: dyn},
            do_constant_folding=True,
        )


def _simplify(model):
    """onnxslim folds BatchNorm into the convolutions and drops dead shape ops; optional."""
    try:
        import onnxslim
    except ImportError:
        return model, False
    try:
        return onnxslim.slim(model), True
    except Exception:  # a simplifier bug must not block an export whose parity is then checked
        return model, False


def random_ops(model) -> list[str]:
    return sorted({n.op_type for n in model.graph.node if n.op_type in RANDOM_OPS or "Random" in n.op_type})


def ort_cpu_run(model_bytes: bytes):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run([OUTPUT], {INPUT: x})[0]


def export_onnx(
    checkpoint: str | Path,
    out: str | Path,
    mode: str = "single",
    passes: int = 8,
    fp16: bool = False,
    seed: int = 0,
    force: bool = False,
    parity_input: np.ndarray | None = None,
    int8_frames: np.ndarray | None = None,
) -> ExportResult:
    """Write ``out`` from ``checkpoint``; raises ParityError (and writes nothing) on a mismatch.

    ``int8_frames`` (N, C, H, W) in [0, 1], frames like those the model will denoise: after the
    float32 graph's parity check, its trunk is quantized to int8 calibrated on them
    (``export.int8``), and written only if it stays within ``MIN_FIDELITY_DB`` of the float32 graph."""
    import onnx

    out = Path(out)
    passes = check_mode(mode, passes)
    check_writable(out, force)
    ckpt = load_checkpoint(checkpoint)
    if ckpt.is_temporal:
        raise CheckpointError(f"{checkpoint} is a temporal checkpoint: export it with "
                              "temporal.export.export_temporal_checkpoint (b2g-deploy export does)")
    if fp16 and int8_frames is not None:
        raise InputError("--fp16 and --int8 are two different graphs: choose one")
    if int8_frames is not None:
        from .int8 import check_calibration_frames

        check_calibration_frames(int8_frames, ckpt.net.channels)
    net, precision = ckpt.net, "fp16" if fp16 else "fp32"
    rate = ckpt.config.mask.rate
    module = build_module(net, mode, passes, rate, seed, half=fp16)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        _trace(module, net.channels, net.multiple, raw)
        model = onnx.load(str(raw))
    model, simplified = _simplify(model)
    if random_ops(model):  # docs/METHOD_NOTES.md "T-Standout": sampling never reaches a deployed graph
        raise ParityError(f"the exported graph contains random ops: {', '.join(random_ops(model))}")
    meta = ExportMetadata(
        channels=net.channels, bit_depth=int(ckpt.meta.get("bit_depth", 8)), mode=mode, passes=passes,
        precision=precision, multiple=net.multiple, opset=OPSET, checkpoint_sha256=file_sha256(checkpoint),
        mask_rate=rate if mode == "ensemble" else 0.0, mask_seed=seed, preset=str(ckpt.meta.get("preset", "")),
    )
    write_props(model, meta)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    report = _parity(data, net, mode, passes, rate, seed, precision, parity_input)
    fidelity = None
    if int8_frames is not None:
        from .int8 import calibration_frames, quantize_int8

        meta = replace(meta, precision="int8")
        quantized = quantize_int8(data, INPUT, OUTPUT, calibration_frames(int8_frames), props=meta.to_props())
        data, fidelity = quantized.model, quantized.fidelity_db
    with atomic_path(out) as tmp:
        Path(tmp).write_bytes(data)
    return ExportResult(out, meta, report, simplified, fidelity)


def torch_reference(net, mode: str, passes: int, rate: float, seed: int, x: np.ndarray) -> np.ndarray:
    """What the exported graph must reproduce: the fp32 PyTorch wrapper, same fixed masks."""
    with torch.no_grad():
        return build_module(net, mode, passes, rate, seed, half=False)(torch.from_numpy(x)).numpy()


def _parity(model_bytes, net, mode, passes, rate, seed, precision, x) -> ParityReport:
    x = parity_image(net.channels) if x is None else x
    ref = torch_reference(net, mode, passes, rate, seed, x)
    return check_parity("ONNX Runtime CPU", ort_cpu_run(model_bytes), ref, x, precision)
