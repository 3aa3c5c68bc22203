"""What an exported model says about itself: ONNX ``metadata_props`` under ``b2g.*`` keys.

A runtime reads these to know the channel count, the value scaling, the bit depth to write
back and the mode, and to refuse an ONNX file that b2g-deploy did not write.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .. import __version__
from ..errors import CheckpointError
from .info import ModelInfo

FORMAT = "b2g-deploy/onnx"
VALUE_SCALING = "0..1 float32"  # input and output tensors, whatever the precision inside
PREFIX = "b2g."


@dataclass(frozen=True)
class ExportMetadata:
    channels: int
    bit_depth: int
    mode: str  # "single", "ensemble" or "flips" (modelfile.graph.MODES)
    passes: int
    precision: str  # "fp32" or "fp16" inside the graph; I/O is float32 either way
    multiple: int
    opset: int
    checkpoint_sha256: str
    mask_rate: float = 0.0
    mask_seed: int = 0
    preset: str = ""
    package_version: str = __version__
    value_scaling: str = VALUE_SCALING
    format: str = FORMAT

    def to_props(self) -> dict[str, str]:
        return {PREFIX + k: str(v) for k, v in asdict(self).items()}

    @classmethod
    def from_props(cls, props: dict[str, str], where: str) -> "ExportMetadata":
        """Parse ``b2g.*`` props; a file without our format key is refused as not ours."""
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if ours.get("format") != FORMAT:
            raise CheckpointError(f"{where} is not a b2g-deploy ONNX model (no b2g metadata)")
        try:
            return cls(
                channels=int(ours["channels"]),
                bit_depth=int(ours["bit_depth"]),
                mode=ours["mode"],
                passes=int(ours["passes"]),
                precision=ours["precision"],
                multiple=int(ours["multiple"]),
                opset=int(ours["opset"]),
                checkpoint_sha256=ours["checkpoint_sha256"],
                mask_rate=float(ours.get("mask_rate", 0.0)),
                mask_seed=int(ours.get("mask_seed", 0)),
                preset=ours.get("preset", ""),
                package_version=ours.get("package_version", ""),
                value_scaling=ours.get("value_scaling", VALUE_SCALING),
            )
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{where} has damaged b2g metadata ({exc})") from None

    def model_info(self, **extra: Any) -> ModelInfo:
        fields = {"precision": self.precision, "multiple": self.multiple, **extra}
        return ModelInfo(self.channels, self.bit_depth, self.mode, self.passes, fields)


def write_props(model: Any, meta: ExportMetadata) -> None:
    """Replace the ``b2g.*`` entries of an onnx.ModelProto's metadata_props."""
    keep = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in meta.to_props().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def read_onnx_metadata(path: str) -> ExportMetadata:
    """Metadata of an ONNX file on disk, without loading its weights."""
    import onnx

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as exc:  # protobuf DecodeError and friends: corrupt or not ONNX at all
        raise CheckpointError(f"{path} is not a readable ONNX file ({type(exc).__name__})") from None
    return ExportMetadata.from_props({p.key: p.value for p in model.metadata_props}, str(path))
