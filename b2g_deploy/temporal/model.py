"""TemporalB2GNet: the B2G network with a two-part head that reads a window of frames.

Input (B, T*C, H, W): T frames of C channels stacked on the channel axis in time order, one of
them (``target_index``) the frame to denoise. Output (B, C, H, W): the denoised target frame.

Why two heads: the blind-spot loss only works if the network cannot see the noisy value of a
pixel it is asked to predict. That value lives in the target frame alone, so only the target
goes through :class:`~b2g_deploy.model.PartialConv2d` with the blind-spot mask; the neighbouring
frames carry the same scene with *independent* noise (``noise_check`` verifies it), so they are
read in full by a plain 3x3 convolution. The two head outputs are summed, and everything after
the head (pooling encoder, decoder, tail) is B2GNet's own: the temporal net *is* a B2GNet whose
head was swapped (composition, so a change to B2GNet's trunk applies here unchanged).

Because the neighbour head is additive, a zero neighbour head makes the temporal net exactly the
single-frame net applied to the target: :meth:`TemporalB2GNet.init_from_single_frame` uses that
to start a video fit from a fitted single-frame network or a shipped prior.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from ..model import _LEAK, B2GNet, PartialConv2d, denoise
from .align import align_windows, check_align
from .windows import stack_window, window_indices


class HeadMixer(nn.Module):
    """A residual block at full resolution on the summed heads: x + W2 lrelu(W1 lrelu(x)).

    Why: the summed heads are linear in the frames, and the trunk's only full-resolution layers
    after them are the last decoder stage's two convolutions; this gives the net two more layers
    at full resolution to compare the target's features with its neighbours' (where to trust
    them) before the first pooling. W2 starts at zero, so adding a mixer to a pretrained net
    changes nothing until it trains (:meth:`TemporalB2GNet.with_mixer`). The blind spot is kept:
    the target head already excludes every masked pixel, and nothing here reads the frames.
    """

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.expand = nn.Conv2d(width, hidden, 3, padding=1)
        self.project = nn.Conv2d(hidden, width, 3, padding=1)
        with torch.no_grad():
            self.project.weight.zero_()
            self.project.bias.zero_()

    @property
    def hidden(self) -> int:
        return self.expand.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(F.leaky_relu(self.expand(F.leaky_relu(x, _LEAK)), _LEAK))


class TemporalHead(nn.Module):
    """Blind-spot partial conv on the target frame + plain conv on the neighbours, summed (then,
    with ``mixer`` > 0, a :class:`HeadMixer` of that many hidden channels)."""

    def __init__(self, channels: int, window: int, target_index: int, width: int, mixer: int = 0):
        super().__init__()
        self.channels, self.window, self.target_index = channels, window, target_index
        self.target = PartialConv2d(channels, width)
        # window 1 is the single-frame net: no neighbours, no neighbour weights.
        self.neighbours = nn.Conv2d((window - 1) * channels, width, 3, padding=1) if window > 1 else None
        self.mixer = HeadMixer(width, mixer) if mixer else None

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(target (B, C, H, W), neighbours (B, (T-1)*C, H, W) or None) of a stacked window.

        The slices are chosen in Python from the fixed target index, so a traced graph holds no
        zero-sized slice (a causal window's target is last, a T=1 window has no neighbours).
        """
        c, t = self.channels, self.target_index
        target = x[:, t * c : (t + 1) * c]
        if self.window == 1:
            return target, None
        if t == 0:
            return target, x[:, c:]
        if t == self.window - 1:
            return target, x[:, : t * c]
        return target, torch.cat([x[:, : t * c], x[:, (t + 1) * c :]], dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        target, neighbours = self.split(x)
        out = self.target(target, mask)
        if neighbours is not None:
            out = out + self.neighbours(neighbours)
        return out if self.mixer is None else self.mixer(out)


class TemporalB2GNet(nn.Module):
    """f_theta over a window of ``window`` frames; ``forward(window, mask)`` -> target frame.

    ``mask`` (B, 1, H, W), 1 = visible, applies to the target frame only; None = all visible,
    the deployable pass. ``target_index`` defaults to the centre (``window // 2``); a causal
    window (no future frames) has its target last: use :meth:`for_k`. ``align``: how windows
    are prepared before the network sees them ("dis", "dis-fine": neighbours warped onto the target,
    ``temporal.align``; "none": as decoded). It is not part of the graph; checkpoints, exported
    models and runtimes carry it so every window is prepared as the fit prepared them.
    ``mixer``: hidden channels of a :class:`HeadMixer` after the heads (0: none, the default).
    """

    def __init__(self, channels: int, window: int, cfg: ModelConfig = ModelConfig(),
                 target_index: int | None = None, align: str = "none", mixer: int = 0):
        super().__init__()
        self.align = check_align(align)
        if window < 1:
            raise ValueError(f"window must hold at least one frame, got {window}")
        if not 0 <= mixer <= 256:
            raise ValueError(f"mixer must be 0..256 hidden channels, got {mixer}")
        target_index = window // 2 if target_index is None else target_index
        if not 0 <= target_index < window:
            raise ValueError(f"target_index {target_index} is outside a window of {window} frames")
        self.core = B2GNet(channels, cfg)  # validates channels
        self.core.head = TemporalHead(channels, window, target_index, cfg.width, mixer)

    @classmethod
    def for_k(cls, channels: int, k: int, causal: bool, cfg: ModelConfig = ModelConfig(),
              align: str = "none", mixer: int = 0) -> "TemporalB2GNet":
        """The net for ``windows.window_indices(.., k, causal)``: 2k+1 frames, target centred
        (frames t-k..t+k) or last (causal: frames t-2k..t)."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        window = 2 * k + 1
        return cls(channels, window, cfg, target_index=window - 1 if causal else k, align=align, mixer=mixer)

    @property
    def head(self) -> TemporalHead:
        return self.core.head

    @property
    def channels(self) -> int:
        return self.core.channels

    @property
    def cfg(self) -> ModelConfig:
        return self.core.cfg

    @property
    def window(self) -> int:
        return self.head.window

    @property
    def mixer(self) -> int:
        """Hidden channels of the head's :class:`HeadMixer`; 0 when it has none."""
        return 0 if self.head.mixer is None else self.head.mixer.hidden

    @property
    def target_index(self) -> int:
        return self.head.target_index

    @property
    def multiple(self) -> int:
        """H and W must be multiples of this (``b2g_deploy.model.denoise`` pads to it)."""
        return self.core.multiple

    def target_frame(self, x: torch.Tensor) -> torch.Tensor:
        """The target frame (B, C, H, W) of a stacked window (B, T*C, H, W)."""
        return self.head.split(x)[0]

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        expected = self.window * self.channels
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(
                f"expected a (B, {expected}, H, W) window ({self.window} frames x {self.channels} "
                f"channels), got {tuple(x.shape)}"
            )
        return self.core(x, mask)

    @torch.no_grad()
    def init_from_single_frame(self, net: B2GNet) -> "TemporalB2GNet":
        """Copy a single-frame B2GNet in: its head becomes the target head, its trunk (encoder,
        decoder, tail, BatchNorm statistics) is copied, and the neighbour head is zeroed.

        The result on any window equals ``net`` on the window's target frame, so a temporal fit
        starts where the single-frame fit (or prior) ended and only learns what the neighbours add.
        """
        if net.channels != self.channels or net.cfg != self.cfg:
            raise ValueError(
                f"cannot initialise a {self.channels}-channel temporal net with {self.cfg!r} from a "
                f"{net.channels}-channel net with {net.cfg!r}"
            )
        state = {("head.target." + key[len("head."):] if key.startswith("head.") else key): value
                 for key, value in net.state_dict().items()}
        missing, unexpected = self.core.load_state_dict(state, strict=False)
        if unexpected or any(not key.startswith("head.neighbours.") for key in missing):
            raise ValueError(f"single-frame weights do not fit: missing {missing}, unexpected {unexpected}")
        if self.head.neighbours is not None:
            self.head.neighbours.weight.zero_()
            self.head.neighbours.bias.zero_()
        return self

    @torch.no_grad()
    def init_neighbours_as_mean(self) -> "TemporalB2GNet":
        """Make the head read the window's mean: the target head's weights are split evenly over
        the 2k+1 frames, so after :meth:`init_from_single_frame` the net is the single-frame net
        applied to the mean of the window (away from the border, where the partial conv's
        renormalisation of the zero padding applies to the target's share only).

        Why: a zero neighbour head learns to use the neighbours slowly (docs/METHOD_NOTES.md,
        "Fusing the outputs": 0.5 dB over the single-frame prior after pretraining, where the
        plain mean of five still frames gives 3.7), so a temporal prior can start from the mean
        and learn where to trust it less instead.
        """
        neighbours = self.head.neighbours
        if neighbours is None:
            return self
        share = 1.0 / self.window
        target = self.head.target
        neighbours.weight.copy_(torch.cat([target.weight * share] * (self.window - 1), dim=1))
        neighbours.bias.zero_()
        target.weight.mul_(share)
        return self

    def widened(self, k: int) -> "TemporalB2GNet":
        """A new net for the wider window of half-width ``k`` (the same shape: centred or causal),
        equal to this one on every window: all weights copied, each neighbour's weights moved to
        the slot at the same distance from the target, the frames added (further out) read with
        zero weights. Why: a wider temporal prior starts from a pretrained narrower one and only
        learns what the outer frames add (``pretrain --temporal-k 3 --init-from prior_t2.pt``)."""
        old_k, causal = window_shape(self)
        if k < old_k:
            raise ValueError(f"cannot narrow a k={old_k} net to k={k}")
        wide = type(self).for_k(self.channels, k, causal, self.cfg, self.align, self.mixer).to(
            next(self.parameters()).device)
        state = {key: value for key, value in self.state_dict().items() if not key.startswith("core.head.neighbours.")}
        missing, unexpected = wide.load_state_dict(state, strict=False)
        if unexpected or any(not key.startswith("core.head.neighbours.") for key in missing):
            raise ValueError(f"weights do not fit the wider net: missing {missing}, unexpected {unexpected}")
        old, new, c = self.head.neighbours, wide.head.neighbours, self.channels
        if new is None:
            return wide
        with torch.no_grad():
            new.weight.zero_()
            new.bias.zero_()
            if old is not None:
                new.bias.copy_(old.bias)
                # Neighbour slots in time order without the target: slot -> offset from the target.
                offsets = lambda net: [j - net.target_index for j in range(net.window) if j != net.target_index]  # noqa: E731
                where = {off: i for i, off in enumerate(offsets(wide))}
                for i, off in enumerate(offsets(self)):
                    j = where[off]
                    new.weight[:, j * c : (j + 1) * c] = old.weight[:, i * c : (i + 1) * c]
        return wide

    def with_mixer(self, hidden: int) -> "TemporalB2GNet":
        """A new net with a :class:`HeadMixer` of ``hidden`` channels, equal to this one on every
        window (the mixer's last convolution starts at zero; every other weight is copied). Why: a
        pretrained temporal prior gains the extra capacity where it uses its neighbours without
        starting again (``pretrain --init-from prior_t2.pt --config '{"temporal_mixer": 16}'``)."""
        if self.mixer:
            raise ValueError(f"this net already has a mixer ({self.mixer} channels)")
        k, causal = window_shape(self)
        mixed = type(self).for_k(self.channels, k, causal, self.cfg, self.align, hidden).to(
            next(self.parameters()).device)
        missing, unexpected = mixed.load_state_dict(self.state_dict(), strict=False)
        if unexpected or any(not key.startswith("core.head.mixer.") for key in missing):
            raise ValueError(f"weights do not fit the mixed net: missing {missing}, unexpected {unexpected}")
        return mixed.train(self.training)

    @classmethod
    def from_single_frame(cls, net: B2GNet, k: int, causal: bool) -> "TemporalB2GNet":
        """A new temporal net (see :meth:`for_k`) initialised from ``net`` (same device)."""
        device = next(net.parameters()).device
        temporal = cls.for_k(net.channels, k, causal, net.cfg).to(device)
        return temporal.init_from_single_frame(net)


def window_shape(net: TemporalB2GNet) -> tuple[int, bool]:
    """(k, causal) of the net's window, as ``windows.window_indices`` reads windows."""
    k = (net.window - 1) // 2
    causal = net.window > 1 and net.target_index == net.window - 1
    if net.window % 2 == 0 or net.target_index not in (k, 2 * k):
        raise ValueError(f"a {net.window}-frame window with the target in slot {net.target_index} is "
                         "neither centred nor causal (see windows.window_indices)")
    return k, causal


def clip_windows(net: TemporalB2GNet, frames: torch.Tensor, targets) -> torch.Tensor:
    """The windows the deployable pass reads for the frames ``targets`` of a clip (N, C, H, W):
    (len(targets), T*C, H, W), aligned when ``net.align`` says so."""
    k, causal = window_shape(net)
    n = frames.shape[0]
    batch = torch.stack([stack_window(frames, window_indices(t, n, k, causal)) for t in targets])
    if net.align != "none":
        batch = torch.from_numpy(align_windows(batch.cpu().numpy(), net.channels, net.target_index,
                                               net.align)).to(batch.device)
    return batch


@torch.no_grad()
def denoise_clip(net: TemporalB2GNet, frames: torch.Tensor, chunk: int = 4) -> torch.Tensor:
    """The deployable pass (target fully visible) on every frame of a clip (N, C, H, W), any H, W.

    Frame t is denoised from its window ``window_indices(t, N, k, causal)`` with k and causal
    read off the net, so offline results match what a :class:`~.windows.RingBuffer` stream gives.
    """
    window_shape(net)  # refuse a window that is neither centred nor causal before any work
    net.eval()
    n = frames.shape[0]
    return torch.cat([denoise(net, clip_windows(net, frames, range(first, min(first + chunk, n))))
                      for first in range(0, n, chunk)])
