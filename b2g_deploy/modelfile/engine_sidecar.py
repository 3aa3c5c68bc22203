"""The JSON sidecar (``X.engine.json``) that says what a TensorRT engine was built for.

A serialized engine only works with the TensorRT version and GPU that built it; loading it
elsewhere fails deep inside TensorRT or, worse, crashes. The sidecar is read first, so such an
engine is refused with a one-line reason before TensorRT ever sees it.

It also says what the engine takes. ``channels`` is always the channel count of a *frame*. An
engine built from a temporal ONNX export (``temporal.export``) has ``temporal`` set to its window
(``window`` frames, half-width ``k``, ``causal``, the target's slot ``target_index``): its input
is a stacked window of ``window * channels`` channels, which is also the channel dimension of its
profile, and its output one frame of ``channels``. Sidecars written before temporal engines
existed have no ``temporal`` key and load as single-frame engines.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import EngineMismatchError, InputError
from ..temporal.align import ALIGN_MODES

Shape = tuple[int, int, int, int]


def sidecar_path(engine: str | Path) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def parse_shape(text: str, channels: int | None = None, what: str = "shape") -> Shape:
    """'1x3x720x1280' -> (1, 3, 720, 1280); every field a positive integer."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise InputError(f"{what} '{text}' is not BxCxHxW, e.g. 1x3x720x1280") from None
    if len(dims) != 4 or min(dims) < 1:
        raise InputError(f"{what} '{text}' must be four positive integers BxCxHxW, e.g. 1x3x720x1280")
    if channels is not None and dims[1] != channels:
        raise InputError(f"{what} '{text}' has {dims[1]} channels; the model has {channels}")
    return dims  # type: ignore[return-value]


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimization profile over the input (B, C, H, W); for a temporal engine C
    is the stacked window's channel count, frames x channels a frame."""

    min: Shape
    opt: Shape
    max: Shape

    def validate(self, multiple: int) -> "Profile":
        if not all(a <= b <= c for a, b, c in zip(self.min, self.opt, self.max)):
            raise InputError(f"shapes must satisfy min <= opt <= max in every dimension: {self.describe()}")
        if len({self.min[1], self.opt[1], self.max[1]}) != 1:
            raise InputError("min, opt and max shapes must have the same channel count")
        if min(self.min[2:]) < multiple:
            raise InputError(f"--min-shape height and width must be at least {multiple} (the model's multiple)")
        return self

    def describe(self) -> str:
        return " / ".join("x".join(map(str, s)) for s in (self.min, self.opt, self.max))

    def check(self, shape: tuple[int, ...], what: str = "frames") -> None:
        """A (B, C, H, W) batch inside the profile, or EngineMismatchError naming both."""
        if len(shape) != 4 or any(s < lo or s > hi for s, lo, hi in zip(shape, self.min, self.max)):
            raise EngineMismatchError(
                f"{what} of shape {'x'.join(map(str, shape))} are outside the engine's profile "
                f"{'x'.join(map(str, self.min))} .. {'x'.join(map(str, self.max))}; rebuild with a wider "
                "--min-shape/--max-shape or use --tile"
            )


def current_gpu() -> tuple[str, str]:
    """(name, compute capability) of the current CUDA device, via torch (no pycuda needed)."""
    import torch

    if not torch.cuda.is_available():
        raise EngineMismatchError("TensorRT engines need a CUDA GPU and none is available here")
    major, minor = torch.cuda.get_device_capability()
    return torch.cuda.get_device_name(), f"{major}.{minor}"


TEMPORAL_KEYS = {"window": int, "k": int, "causal": bool, "target_index": int}


ALIGN_VALUES = ALIGN_MODES  # how windows are prepared before the engine (temporal.align)


def temporal_fields(window: int, k: int, causal: bool, target_index: int, align: str = "none") -> dict[str, Any]:
    """The sidecar's ``temporal`` entry for a window of ``window`` frames."""
    return {"window": int(window), "k": int(k), "causal": bool(causal), "target_index": int(target_index),
            "align": str(align)}


def _check_temporal(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) - {"align"} != set(TEMPORAL_KEYS):
        raise ValueError(f"temporal must hold {', '.join(TEMPORAL_KEYS)} (and align)")
    if value.get("align", "none") not in ALIGN_VALUES:
        raise ValueError(f"temporal align {value['align']!r} is not one of {', '.join(ALIGN_VALUES)}")
    for key, kind in TEMPORAL_KEYS.items():
        v = value[key]
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise ValueError(f"temporal {key} {v!r} is not a {kind.__name__}")
    if not (value["window"] == 2 * value["k"] + 1 and 0 <= value["target_index"] < value["window"]):
        raise ValueError(f"temporal window {value} is inconsistent")
    return value


@dataclass(frozen=True)
class EngineSidecar:
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    profile: Profile
    fp16: bool
    channels: int  # a frame's channels (also the output's)
    model: dict[str, Any] = field(default_factory=dict)  # the ONNX b2g metadata it came from
    package_version: str = __version__
    format: str = "b2g-deploy/tensorrt-engine"
    temporal: dict[str, Any] | None = None  # a temporal engine's window (temporal_fields); None: single-frame

    @property
    def is_temporal(self) -> bool:
        return self.temporal is not None

    @property
    def input_channels(self) -> int:
        """The input's channel count: a frame's, or a stacked window's (frames x channels)."""
        return self.channels * (self.temporal["window"] if self.temporal else 1)

    def to_json(self) -> str:
        data = asdict(self)
        data["profile"] = {k: list(v) for k, v in asdict(self.profile).items()}
        return json.dumps(data, indent=2)

    @classmethod
    def load(cls, engine: str | Path) -> "EngineSidecar":
        path = sidecar_path(engine)
        if not path.is_file():
            raise EngineMismatchError(f"{engine} has no sidecar {path.name}; rebuild it with b2g-deploy export --trt")
        try:
            data = json.loads(path.read_text())
            prof = data.pop("profile")
            profile = Profile(*(tuple(int(v) for v in prof[k]) for k in ("min", "opt", "max")))
            if data.get("format") != cls.format:
                raise ValueError("unknown format")
            data["temporal"] = _check_temporal(data.get("temporal"))
            sidecar = cls(profile=profile, **data)
            if profile.min[1] != sidecar.input_channels:
                raise ValueError(f"its profile has {profile.min[1]} channels, its input {sidecar.input_channels}")
            return sidecar
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise EngineMismatchError(f"{path} is not a b2g-deploy engine sidecar ({exc})") from None

    def check_environment(self, tensorrt_version: str, gpu: tuple[str, str]) -> None:
        """The engine runs only on the TensorRT and GPU it was built with."""
        if tensorrt_version != self.tensorrt_version:
            raise EngineMismatchError(
                f"engine built with TensorRT {self.tensorrt_version}, this machine has {tensorrt_version}; "
                "rebuild it here with b2g-deploy export --trt"
            )
        name, cc = gpu
        if (name, cc) != (self.gpu_name, self.compute_capability):
            raise EngineMismatchError(
                f"engine built for {self.gpu_name} (compute {self.compute_capability}), this GPU is "
                f"{name} (compute {cc}); rebuild it here with b2g-deploy export --trt"
            )
