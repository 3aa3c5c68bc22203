"""An exported model as a Triton Inference Server model repository.

``write_triton_repo(onnx, REPO)`` writes ``REPO/NAME/config.pbtxt`` and ``REPO/NAME/N/model.onnx``
(or ``model.plan`` for a TensorRT engine). The config's input and output names, data types and
dims are read from the ONNX file itself; our ``b2g.*`` ONNX metadata is copied into the config's
``parameters``. Nothing here imports tritonclient: the config is written as protobuf text.

Writes are atomic: the model folder is built in a temporary folder beside its target and renamed
into place. An existing REPO is refused without ``force``; with it, only model NAME is replaced
(its other versions are kept) and nothing else in REPO is touched.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError, OutputExistsError

DEFAULT_NAME = "b2g_denoiser"
DEFAULT_MAX_BATCH = 8
DEFAULT_QUEUE_DELAY_US = 100
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]+")

# ONNX TensorProto element type -> Triton data type (model_config.proto DataType)
ONNX_TO_TRITON = {
    1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16", 6: "TYPE_INT32",
    7: "TYPE_INT64", 8: "TYPE_STRING", 9: "TYPE_BOOL", 10: "TYPE_FP16", 11: "TYPE_FP64", 12: "TYPE_UINT32",
    13: "TYPE_UINT64", 16: "TYPE_BF16",
}


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str  # Triton's, e.g. TYPE_FP32
    dims: tuple[int, ...]  # without the batch dimension; -1 for a dynamic one


@dataclass(frozen=True)
class TritonModel:
    repo: Path
    name: str
    version: int
    platform: str
    config: Path
    model_file: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch: int
    instance_kind: str
    parameters: dict[str, str] = field(default_factory=dict)


def check_triton_target(repo: str | Path, name: str = DEFAULT_NAME, version: int = 1,
                        max_batch: int = DEFAULT_MAX_BATCH, force: bool = False) -> Path:
    """Refuse bad arguments before any work: a bad model name, version < 1, max batch < 1, an
    existing REPO without ``force``, a REPO that is a file, or a missing parent folder."""
    repo = Path(repo)
    if not NAME_PATTERN.fullmatch(name or "") or name.startswith(".") or name in (".", ".."):
        raise InputError(f"bad Triton model name '{name}': use letters, digits, '_', '.' and '-', "
                         "not starting with '.'")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InputError(f"the Triton model version must be an integer >= 1, got {version}")
    if isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1:
        raise InputError(f"--max-batch must be an integer >= 1, got {max_batch}")
    if repo.exists() or repo.is_symlink():
        if not repo.is_dir():
            raise InputError(f"{repo} exists and is not a folder")
        if not force:
            raise OutputExistsError(f"{repo} exists; pass --force to replace model '{name}' version "
                                    f"{version} in it (other models and versions are kept)")
    elif not repo.parent.is_dir():
        raise InputError(f"the folder {repo.parent} does not exist")
    return repo


def preferred_batch_sizes(max_batch: int) -> list[int]:
    """Powers of two up to ``max_batch``, and ``max_batch`` itself."""
    sizes, b = [], 1
    while b < max_batch:
        if b > 1:
            sizes.append(b)
        b *= 2
    return [*sizes, max_batch]


def default_instance_kind() -> str:
    try:
        import torch

        return "KIND_GPU" if torch.cuda.is_available() else "KIND_CPU"
    except ImportError:
        return "KIND_CPU"


def onnx_io(onnx_path: str | Path) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...], dict[str, str]]:
    """Inputs, outputs (batch dimension dropped, symbolic dims as -1) and metadata_props of an ONNX
    file, read without its weights."""
    import onnx

    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:
        raise InputError(f"{onnx_path} is not a readable ONNX file ({type(exc).__name__})") from None
    initializers = {t.name for t in model.graph.initializer}

    def specs(values) -> tuple[TensorSpec, ...]:
        out = []
        for v in values:
            if v.name in initializers:
                continue
            t = v.type.tensor_type
            if t.elem_type not in ONNX_TO_TRITON:
                raise InputError(f"{onnx_path}: tensor '{v.name}' has an element type Triton cannot serve")
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim]
            if not dims:
                raise InputError(f"{onnx_path}: tensor '{v.name}' has no batch dimension")
            out.append(TensorSpec(v.name, ONNX_TO_TRITON[t.elem_type], tuple(dims[1:])))
        return tuple(out)

    return specs(model.graph.input), specs(model.graph.output), {p.key: p.value for p in model.metadata_props}


def _quote(text: str) -> str:
    """A protobuf text-format string literal (UTF-8 bytes outside printable ASCII as octal escapes)."""
    out = []
    for byte in text.encode("utf-8"):
        ch = chr(byte)
        if ch in "\"\\":
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def config_text(name: str, platform: str, inputs, outputs, max_batch: int, instance_kind: str,
                parameters: dict[str, str], queue_delay_us: int = DEFAULT_QUEUE_DELAY_US) -> str:
    """config.pbtxt in protobuf text format (Triton's model_config.proto ModelConfig)."""

    def tensors(kind: str, specs) -> list[str]:
        lines = [f"{kind} ["]
        for i, s in enumerate(specs):
            dims = ", ".join(str(d) for d in s.dims)
            lines += ["  {", f"    name: {_quote(s.name)}", f"    data_type: {s.data_type}",
                      f"    dims: [ {dims} ]", "  }" + ("," if i < len(specs) - 1 else "")]
        return [*lines, "]"]

    lines = [f"name: {_quote(name)}", f"platform: {_quote(platform)}", f"max_batch_size: {max_batch}",
             *tensors("input", inputs), *tensors("output", outputs),
             "dynamic_batching {",
             f"  preferred_batch_size: [ {', '.join(str(b) for b in preferred_batch_sizes(max_batch))} ]",
             f"  max_queue_delay_microseconds: {queue_delay_us}", "}",
             "instance_group [", "  {", "    count: 1", f"    kind: {instance_kind}", "  }", "]"]
    for key, value in parameters.items():
        lines += ["parameters {", f"  key: {_quote(key)}",
                  f"  value: {{ string_value: {_quote(value)} }}", "}"]
    return "\n".join(lines) + "\n"


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def write_triton_repo(
    onnx: str | Path,
    repo: str | Path,
    name: str = DEFAULT_NAME,
    version: int = 1,
    max_batch: int = DEFAULT_MAX_BATCH,
    plan: str | Path | None = None,
    force: bool = False,
    instance_kind: str | None = None,
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
) -> TritonModel:
    """Write model ``name`` version ``version`` into the Triton repository ``repo``.

    ``onnx`` is the exported model (its tensors and metadata make the config). With ``plan`` (a
    TensorRT engine built from that ONNX) the version folder holds ``model.plan`` and the platform
    is ``tensorrt_plan``; otherwise it holds a copy of the ONNX file (``onnxruntime_onnx``).
    ``instance_kind`` is KIND_GPU or KIND_CPU; None picks KIND_GPU when CUDA is available.
    """
    repo = check_triton_target(repo, name, version, max_batch, force)
    onnx = Path(onnx)
    if not onnx.is_file():
        raise InputError(f"{onnx} does not exist")
    if plan is not None and not Path(plan).is_file():
        raise InputError(f"{plan} does not exist")
    if instance_kind is None:
        instance_kind = default_instance_kind()
    if instance_kind not in ("KIND_GPU", "KIND_CPU"):
        raise InputError(f"instance kind must be KIND_GPU or KIND_CPU, got {instance_kind}")
    if isinstance(queue_delay_us, bool) or not isinstance(queue_delay_us, int) or queue_delay_us < 0:
        raise InputError(f"the queue delay must be an integer >= 0 microseconds, got {queue_delay_us}")
    if (repo / name).exists() and not (repo / name).is_dir():
        raise InputError(f"{repo / name} exists and is not a model folder")
    inputs, outputs, props = onnx_io(onnx)
    platform, filename, source = ("tensorrt_plan", "model.plan", Path(plan)) if plan is not None \
        else ("onnxruntime_onnx", "model.onnx", onnx)
    text = config_text(name, platform, inputs, outputs, max_batch, instance_kind, props, queue_delay_us)

    # Stage beside the final folder (same filesystem, so the rename is atomic).
    existing = repo.is_dir()
    stage_parent = repo if existing else repo.parent
    prefix = f".{name if existing else repo.name}."
    stage = Path(tempfile.mkdtemp(prefix=prefix, suffix=".part", dir=stage_parent))
    aside = None
    try:
        model_dir = stage / name if not existing else stage
        if existing and (repo / name).is_dir():
            # Keep the model's other versions (hard links: no copy of their weights).
            shutil.rmtree(stage)
            shutil.copytree(repo / name, stage, symlinks=True, copy_function=_link_or_copy,
                            ignore=lambda d, names: [str(version)] if Path(d) == repo / name else [])
        version_dir = model_dir / str(version)
        version_dir.mkdir(parents=True, exist_ok=True)
        for stale in ("config.pbtxt",):
            (model_dir / stale).unlink(missing_ok=True)  # a hard link: never write through it
        shutil.copyfile(source, version_dir / filename)
        (model_dir / "config.pbtxt").write_text(text, encoding="utf-8")
        if not existing:
            os.rename(stage, repo)
        else:
            target = repo / name
            if target.exists() or target.is_symlink():
                aside = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=repo))
                os.rename(target, aside / name)
            os.rename(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if aside is not None and (aside / name).exists() and not (repo / name).exists():
            os.rename(aside / name, repo / name)  # put the old model back
        raise
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    final = repo / name
    return TritonModel(repo, name, version, platform, final / "config.pbtxt", final / str(version) / filename,
                       inputs, outputs, max_batch, instance_kind, props)
