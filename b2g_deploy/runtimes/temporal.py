"""Runtimes for temporal (multi-frame) models: a window of frames in, the target frame out.

A temporal model takes (B, T*C, H, W) windows, not (B, C, H, W) frames, so it is not a
:class:`~b2g_deploy.runtimes.base.Runtime` the image paths could be handed by mistake: the
ordinary ``load_runtime`` refuses temporal files, and the video pipeline opens them with
:func:`load_temporal_runtime` and feeds them through a
:class:`~b2g_deploy.temporal.windows.RingBuffer` (``io.pipeline``).

Three backends: ONNX Runtime (an ``export --onnx`` of a temporal checkpoint) and PyTorch (the
checkpoint itself), both running the same wrapper (``temporal.export.TemporalExportModule``), and
TensorRT (an ``export --trt`` engine built from that ONNX graph, whose sidecar records the
window: ``trt_runtime.TrtTemporalRuntime``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError, InputError
from ..modelfile.info import ModelInfo
from ._frames import pad_small

TEMPORAL_SUFFIXES = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".engine": "tensorrt",
                     ".plan": "tensorrt"}


def is_temporal_model(path: str | Path) -> bool:
    """Does ``path`` hold a temporal model (a .pt checkpoint, .onnx export or TensorRT engine,
    the last told by its sidecar, without TensorRT)? False for anything else, including
    unreadable files: the runtime that loads them says why."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        return False
    if suffix in (".pt", ".pth"):
        from ..checkpoint import checkpoint_is_temporal

        return checkpoint_is_temporal(path)
    if suffix == ".onnx":
        try:
            import onnx

            from ..temporal.export import FORMAT, PREFIX

            model = onnx.load(str(path), load_external_data=False)
        except Exception:  # noqa: BLE001 - missing package or not ONNX: not ours to judge here
            return False
        return any(p.key == PREFIX + "format" and p.value == FORMAT for p in model.metadata_props)
    if suffix in (".engine", ".plan"):
        from ..errors import B2GError
        from ..modelfile.engine_sidecar import EngineSidecar

        try:
            return EngineSidecar.load(path).is_temporal
        except B2GError:  # no or a damaged sidecar: the engine runtime refuses it with the reason
            return False
    return False


class TemporalRuntime:
    """``infer_windows`` on stacked windows; ``k``, ``causal`` say how to assemble them."""

    name = "temporal"
    temporal = True  # the pipeline's cue to feed windows through a RingBuffer
    info: ModelInfo
    k: int
    causal: bool
    window: int
    multiple: int
    align: str = "none"  # "dis", "dis-fine", "lk": neighbours warped onto the target before the network (temporal.align)
    _spares: list[np.ndarray] | None = None  # prepare_window_frames' batch arrays, free for reuse

    def _check(self, windows: np.ndarray) -> np.ndarray:
        want = self.window * self.info.channels
        if not isinstance(windows, np.ndarray) or windows.ndim != 4 or windows.shape[1] != want:
            raise InputError(f"expected (B, {want}, H, W) windows ({self.window} frames x "
                             f"{self.info.channels} channels), got shape {getattr(windows, 'shape', None)}")
        if windows.shape[0] == 0:
            raise InputError("empty batch")
        return np.ascontiguousarray(windows, dtype=np.float32)

    def infer_windows(self, windows: np.ndarray) -> np.ndarray:
        """(B, T*C, H, W) float32 in [0, 1] -> the denoised target frames (B, C, H, W)."""
        windows = self._check(windows)
        if self.align != "none":  # as the fit prepared its windows
            from ..temporal.align import align_windows

            windows = align_windows(windows, self.info.channels, self.target_index, self.align)
        padded, h, w = pad_small(windows, self.multiple)
        return self._run(padded)[..., :h, :w]

    def infer_window_frames(self, windows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """Windows given as their (C, H, W) frames in slot order (``RingBuffer.push_frames``) ->
        the denoised target frames (B, C, H, W): what ``infer_windows`` gives for the stacked
        windows. The frames must not change after they are passed (the ring keeps them too).
        ``prepare_window_frames`` then ``run_prepared``, which a stream may run on two threads."""
        return self.run_prepared(self.prepare_window_frames(windows))

    def prepare_window_frames(self, windows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """The host half of ``infer_window_frames``: the windows copied once into a float32 batch
        array the runtime keeps for later calls (at 720p a batch of 4 is 55 MB: allocating it
        afresh costs as much as filling it), the neighbours aligned in place. Another batch may
        be in ``run_prepared`` meanwhile (``io.pipeline`` prepares the next batch on a thread of
        its own while the network runs this one): each is its own array."""
        from ..temporal.windows import stack_windows

        _check_not_empty(windows)
        batch = self._check(stack_windows(windows, self._batch_array(len(windows), windows[0])))
        if self.align != "none":  # as the fit prepared its windows
            from ..temporal.align import align_windows

            batch = align_windows(batch, self.info.channels, self.target_index, self.align, inplace=True)
        return batch

    def run_prepared(self, batch: np.ndarray) -> np.ndarray:
        """A ``prepare_window_frames`` batch through the network -> (B, C, H, W); the batch array
        goes back to the runtime for a later one unless the output is a view of it."""
        padded, h, w = pad_small(batch, self.multiple)
        out = self._run(padded)[..., :h, :w]
        if not np.may_share_memory(out, batch):  # a view of its input must never be overwritten
            self._spare_batches.append(batch if batch.base is None else batch.base)
        return out

    @property
    def _spare_batches(self) -> list[np.ndarray]:
        if self._spares is None:
            self._spares = []
        return self._spares

    def _batch_array(self, n: int, frames: Sequence[np.ndarray]) -> np.ndarray:
        """A C-contiguous float32 (n, T*C, H, W) array for ``stack_windows``: the first n rows of
        a spare one when it is big enough and of this frame size, else a new one."""
        c, h, w = frames[0].shape
        shape = (len(frames) * c, h, w)
        spares = self._spare_batches
        while spares:
            kept = spares.pop()
            if kept.shape[1:] == shape and kept.shape[0] >= n:
                return kept[:n]
        return np.empty((n, *shape), np.float32)

    @property
    def target_index(self) -> int:
        from ..temporal.windows import target_slot

        return target_slot(self.k, self.causal)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def denoise_clip(self, frames: np.ndarray, batch: int = 4) -> np.ndarray:
        """Every frame of a whole clip (N, C, H, W), each from its ``window_indices`` window."""
        from ..temporal.windows import stack_window, window_indices

        n = frames.shape[0]
        outs = []
        for first in range(0, n, batch):
            windows = np.stack([stack_window(frames, window_indices(t, n, self.k, self.causal))
                                for t in range(first, min(first + batch, n))])
            outs.append(self.infer_windows(windows))
        return np.concatenate(outs)

    def close(self) -> None:
        self._spares = None

    def __enter__(self) -> "TemporalRuntime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_not_empty(windows: Sequence[Sequence[np.ndarray]]) -> None:
    if len(windows) == 0 or len(windows[0]) == 0:
        raise InputError("empty batch")


def _info(channels: int, k: int, causal: bool, window: int, bit_depth: int = 8, mode: str = "single",
          passes: int = 1, **extra: Any) -> ModelInfo:
    return ModelInfo(channels, bit_depth, mode, passes, {"temporal": True, "k": k, "causal": causal, "window": window,
                                                         **extra})


class TorchTemporalRuntime(TemporalRuntime):
    """A temporal .pt checkpoint in PyTorch eager; ``fp16`` (CUDA only) runs the network in half
    precision with float32 windows in and frames out, as the single-frame torch runtime does.

    ``mode="flips"``: each (aligned) window's output averaged over ``passes`` (2, 4 or 8) flips
    and turns of the window, every frame of it turned together so its motion stays consistent
    (``modelfile.graph.FlipsModule``, the single-frame geometric self-ensemble). It costs
    ``passes`` network passes; x8 gained 0.12 dB on the 720p cockatoo clip at σ=25, 0.05 after
    the output fusion (docs/METHOD_NOTES.md, "Inference")."""

    name = "torch"

    def __init__(self, path: str | Path, device: str = "cpu", fp16: bool = False, mode: str = "single",
                 passes: int = 8):
        import torch

        from ..checkpoint import load_checkpoint, temporal_settings
        from ..modelfile.graph import FlipsModule, SingleModule, check_mode

        if fp16 and not str(device).startswith("cuda"):
            raise InputError("fp16 with the torch runtime needs a CUDA device (CPU half is slower)")
        if mode not in ("single", "flips"):
            raise InputError(f"--mode {mode} does not apply to a temporal model; use single or flips")
        passes = check_mode(mode, passes)
        ckpt = load_checkpoint(path)
        if not ckpt.is_temporal:
            raise CheckpointError(f"{path} holds a single-frame network, not a temporal one")
        s = temporal_settings(ckpt.net)
        self.k, self.causal, self.window, self.align = s["k"], s["causal"], s["window"], s["align"]
        self.multiple = ckpt.net.multiple
        self.device = torch.device(device)
        self.fp16 = fp16
        net = ckpt.net.half() if fp16 else ckpt.net
        # Both wrappers pad, cast to half inside (fp16) and return float32 frames.
        module = FlipsModule(net, passes, half=fp16) if mode == "flips" else SingleModule(net, half=fp16)
        self.module = module.to(self.device).eval()
        self.info = _info(ckpt.channels, self.k, self.causal, self.window, int(ckpt.meta.get("bit_depth", 8)),
                          mode, passes, device=str(device), multiple=self.multiple, align=self.align, fp16=fp16)
        # On a GPU, infer_window_frames uploads each frame once and builds the windows there (a
        # frame sits in 2k+1 windows: uploading stacked windows would copy it 2k+1 times over
        # PCIe). On the CPU the host batch is already the tensor (torch.from_numpy shares it).
        self.frames_on_device = self.device.type == "cuda"
        self._uploaded: dict[int, tuple[np.ndarray, Any]] = {}  # id(frame) -> (frame, its device copy)

    def infer_tensor(self, windows):
        """(B, T*C, H, W) float32 windows already on the device -> float32 target frames there."""
        import torch

        with torch.inference_mode():
            return self.module(windows)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        import torch

        return self.infer_tensor(torch.from_numpy(windows).to(self.device)).cpu().numpy()

    def infer_window_frames(self, windows: Sequence[Sequence[np.ndarray]]) -> np.ndarray:
        """As the base class; with ``frames_on_device`` the windows are assembled on the device
        from frames uploaded once each (the same values, so the same output)."""
        _check_not_empty(windows)
        if not self._can_assemble_on_device(windows):  # DIS alignment and padding work on host windows
            return super().infer_window_frames(windows)
        batch = self._device_windows(windows)
        if self.align == "lk":  # the torch flow aligns where the windows are (temporal.flow_torch)
            import torch

            from ..temporal.flow_torch import align_windows_torch

            with torch.inference_mode():
                batch = align_windows_torch(batch, self.info.channels, self.target_index)
        return self.infer_tensor(batch).cpu().numpy()

    def _can_assemble_on_device(self, windows: Sequence[Sequence[np.ndarray]]) -> bool:
        c, h, w = windows[0][0].shape
        return (self.frames_on_device and self.align in ("none", "lk") and len(windows[0]) == self.window
                and c == self.info.channels and min(h, w) >= self.multiple)

    def _device_windows(self, windows: Sequence[Sequence[np.ndarray]]):
        """(B, T*C, H, W) float32 windows on the device, each distinct frame uploaded once. The
        uploads of this batch's frames are kept for the next batch, whose windows share most of
        them (consecutive windows overlap in 2k frames); each kept entry holds its frame, so its
        id cannot be taken by a new frame while the entry exists."""
        import torch

        kept: dict[int, tuple[np.ndarray, Any]] = {}
        for frames in windows:
            for frame in frames:
                key = id(frame)
                if key not in kept:
                    hit = self._uploaded.get(key)
                    kept[key] = hit if hit is not None else (frame, self._upload(frame))
        self._uploaded = kept
        slots = torch.stack([kept[id(frame)][1] for frames in windows for frame in frames])
        c, h, w = windows[0][0].shape
        return slots.view(len(windows), len(windows[0]) * c, h, w)

    def _upload(self, frame: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)).to(self.device)

    def close(self) -> None:
        self.module = None  # type: ignore[assignment]
        self._uploaded = {}
        TemporalRuntime.close(self)


class OrtTemporalRuntime(TemporalRuntime):
    """A temporal .onnx export in ONNX Runtime (CPU, or CUDA when onnxruntime-gpu has a GPU)."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, provider: str = "auto", device_id: int = 0, threads: int = 0):
        from ..temporal.export import INPUT, OUTPUT, TemporalExportMetadata
        from .ort_runtime import open_session

        self.session, provider = open_session(path, provider, device_id, threads=threads, allowed=("cpu", "cuda"))
        props = self.session.get_modelmeta().custom_metadata_map
        meta = TemporalExportMetadata.from_props(props, str(path))
        self.meta = meta
        self.k, self.causal, self.window, self.multiple = meta.k, meta.causal, meta.window, meta.multiple
        self.align = meta.align
        self.path, self.provider = Path(path), provider
        self._input, self._output = INPUT, OUTPUT
        names = [i.name for i in self.session.get_inputs()]
        if names != [INPUT]:
            raise CheckpointError(f"{path} has inputs {names}; a temporal b2g-deploy model has one, '{INPUT}'")
        self.info = _info(meta.channels, meta.k, meta.causal, meta.window, provider=provider,
                          precision=meta.precision, multiple=meta.multiple, align=meta.align)

    def _run(self, windows: np.ndarray) -> np.ndarray:
        out = self.session.run([self._output], {self._input: windows})[0]
        b, _, h, w = windows.shape
        if out.shape != (b, self.info.channels, h, w):
            raise CheckpointError(f"{self.path} returned shape {out.shape} for windows {windows.shape}")
        return out

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
        TemporalRuntime.close(self)


def load_temporal_runtime(path: str | Path, runtime: str | None = None, channels: int | None = None,
                          **options: Any) -> TemporalRuntime:
    """Open a temporal model: torch for .pt, ONNX Runtime for .onnx, TensorRT for .engine/.plan
    (``runtime`` may say so too).

    Options: torch takes device, fp16 (CUDA), mode (single | flips) and passes; onnxruntime takes
    provider, device_id, threads; openvino (an .onnx file, on the CPU) precision, threads; tensorrt
    none (an engine runs on the GPU it was built for).
    """

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} does not exist or is not a file")
    by_file = TEMPORAL_SUFFIXES.get(path.suffix.lower())
    if by_file is None:
        raise InputError(f"{path}: a temporal model is a .pt checkpoint, an .onnx export or a TensorRT .engine")
    from .factory import ALSO_READS, construct

    name = by_file if runtime in (None, "auto") else runtime
    if name != by_file and ALSO_READS.get(name) != path.suffix.lower():
        raise InputError(f"a temporal {path.suffix} model runs on {by_file}, not {runtime}")
    if name == "tensorrt":
        from .trt_runtime import TrtTemporalRuntime as cls
    elif name == "openvino":
        from .openvino_runtime import OpenVinoTemporalRuntime as cls
    else:
        cls = TorchTemporalRuntime if name == "torch" else OrtTemporalRuntime
    return construct(cls, path, f"temporal {name}", channels, "frames", **options)
