"""Typed configuration for the B2G network and its fitting, and the named presets.

Every ambiguity of the paper (docs/METHOD_NOTES.md) is a field here, so an ablation is
a config change, never a code change. Unknown keys are rejected (``extra="forbid"``) so a typo
in a saved config or a ``--set`` override fails loudly instead of being ignored.
Thresholds from the paper are on a 0..255 scale and stay that way here; the code divides by 255.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import InputError
from .temporal.align import AlignMode


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(_Strict):
    """The network f_theta (docs/METHOD_NOTES.md, "Network")."""

    width: int = Field(48, ge=4, le=256, description="feature channels at every stage")
    depth: int = Field(5, ge=1, le=5, description="poolings; 5 reaches H/32")
    norm: Literal["batch", "none"] = Field("batch", description="normalisation in decoder stages")
    attention_reduction: int = Field(4, ge=1, le=64, description="channel-attention squeeze ratio")
    gradient_layer: Literal["concat", "add", "none"] = "concat"
    dropout: Literal["none", "standard", "tstandout"] = "tstandout"
    dropout_p: float = Field(0.3, ge=0.0, lt=1.0)
    standout_threshold: float = Field(25.0, ge=0.0, description="eps_s on a 0..255 scale")
    standout_norm: Literal["max", "std"] = Field(
        "max", description="how feature gradients are brought to a 0..1 scale before eps_s"
    )
    output: Literal["clamp", "sigmoid"] = "clamp"


class MaskConfig(_Strict):
    """The blind-spot masks (docs/METHOD_NOTES.md, "Dual mask")."""

    kind: Literal["bernoulli", "dual"] = "dual"
    rate: float = Field(0.25, gt=0.0, lt=1.0, description="fraction of pixels that are blind spots")
    detail_threshold: float = Field(40.0, ge=0.0, description="eps_g on a 0..255 scale")
    detail_window: int = Field(
        5, ge=1, le=31, description="odd box size the distance is averaged over; 1 = per pixel"
    )
    detail_rate_ratio: float = Field(
        0.5, ge=0.0, le=1.0, description="detail pixels are masked at this fraction of the rate"
    )
    cycle: int = Field(200, ge=1, description="iterations between refreshes of x_m and the mask")
    refresh_frames: int | None = Field(
        None, ge=1, description="frames whose x_m each refresh recomputes, in turn; None = all. "
        "A full-frame pass per frame per refresh dominates multi-frame fits at 720p on a CPU",
    )


class LossConfig(_Strict):
    """The gradient-regularized loss (docs/METHOD_NOTES.md, "Loss")."""

    kind: Literal["blindspot", "gradient", "recorrupted"] = Field(
        "gradient", description="gradient: B2G's loss; blindspot: Self2Self/Noise2Self; recorrupted: "
        "R2R (Pang et al. 2021), trains f(y) itself: f(y + a s z) against y - s z / a",
    )
    omega: float = Field(0.8, ge=0.0)
    gamma: float = Field(0.5, ge=0.0)
    gradient_on_blind_spots_only: bool = False
    stop_gradient_full_pass: bool = Field(
        False, description="hold b = f(y) fixed; True means f(y) is never trained directly"
    )
    recorrupt_alpha: float = Field(0.5, gt=0.0, description="a in the recorrupted loss")
    noise_estimate: Literal["wavelet", "prior_residual", "lower"] = Field(
        "wavelet", description="how the recorrupted loss's sigma is estimated when noise_sigma is None: "
        "wavelet: the finest Haar band (fit/noise_level.py; reads high on texture); prior_residual: the "
        "robust std of y - f(y) of the starting network, when the fit starts from a prior; lower: the "
        "lower of the two (each errs high in its own way; a low sigma costs far more than a high one)",
    )
    noise_sigma: float | None = Field(
        None, gt=0.0, description="noise std on a 0..255 scale for the recorrupted loss; None = "
        "estimated from the image (fit/noise_level.py)",
    )
    signal_dependence_limit: float = Field(
        2.0, gt=0.0, description="recorrupted fit from a prior: noise whose variance over the brightest "
        "third of pixels exceeds this times the darkest third's is shot noise (see shot_noise) ...",
    )
    shot_share_limit: float = Field(
        0.8, ge=0.0, le=1.0, description="... or whose fitted var = a * brightness + b puts more than "
        "this share of the variance at the median brightness in a * brightness (see shot_noise)",
    )
    shot_noise: Literal["keep_prior", "model", "ignore"] = Field(
        "keep_prior", description="what a recorrupted fit from a prior does with shot noise: keep the "
        "prior unfitted (best on held-out photographs at Poisson lambda 30: 30.58 dB vs 29.13 for "
        "'model' and 26.84 for 'ignore'), recorrupt with a per-pixel sigma sqrt(a * brightness + b) "
        "fitted to the image ('model'), or use one sigma anyway ('ignore')",
    )
    distill_weight: float = Field(
        0.0,
        ge=0.0,
        description="weight of mean((1-Omega)(f(y) - sg(f(Omega y)))^2): anchors the values of the "
        "deployable single pass f(y) to the blind-spot prediction (not in the paper; 0 = off)",
    )


class FitConfig(_Strict):
    """Everything `b2g-deploy fit` needs besides the image."""

    model: ModelConfig = ModelConfig()
    mask: MaskConfig = MaskConfig()
    loss: LossConfig = LossConfig()
    iters: int = Field(3000, ge=1)
    lr: float = Field(2e-5, gt=0.0)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    batch: int = Field(1, ge=1, le=64, description="masks (and crops) per iteration")
    crop: int | None = Field(
        None, ge=32, description="random square crop side, a multiple of 32; None = whole image"
    )
    augment: bool = Field(False, description="random flips and 90-degree rotations of crops")
    ensemble_passes: int = Field(40, ge=1, description="stochastic passes averaged at the end")
    self_ensemble: Literal[1, 2, 4, 8] = Field(
        1, description="the single-pass image output averages f(y) over this many flips/rotations of "
        "the frame (8: all of them; costs as many passes). Export ships f(y) itself",
    )
    time_budget: float | None = Field(
        None, gt=0.0, description="seconds of fitting; the schedule follows time, not steps"
    )
    init: Literal["prior", "none"] = Field(
        "none", description="start from the shipped prior or from random weights (--init overrides)"
    )
    output: Literal["ensemble", "single", "filled"] = Field(
        "ensemble", description="what the fit writes as the image: the K-pass ensemble, f(y), or "
        "MPI's iterative filling (needs filling)"
    )
    bf16: bool = Field(False, description="bfloat16 autocast of the training steps (weights and the "
                       "written image stay float32); fast on CPUs with AVX512-BF16 and on GPUs")
    channels_last: bool = Field(False, description="NHWC memory layout while fitting")
    filling: float | None = Field(
        None, ge=0.0, lt=1.0, description="MPI's iterative filling: every step a whole-frame masked "
        "pass updates a running mean at its blind spots with this weight (0.9 for 200 steps, 0.99 for "
        "1,000 in MPI); None = off. Costs a whole-frame pass per step",
    )

    @model_validator(mode="after")
    def _crop_fits_the_network(self) -> "FitConfig":
        # Crops are cut from the padded frame and go through 2**depth poolings whole.
        if self.crop is not None and self.crop % 2**self.model.depth:
            raise ValueError(f"crop {self.crop} must be a multiple of {2**self.model.depth}")
        return self

    def with_overrides(self, **changes: object) -> "FitConfig":
        """A copy with top-level fields replaced, validated like a fresh config."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return FitConfig.model_validate(data)


PRESETS: dict[str, FitConfig] = {
    # The paper's settings: width 48 (Self2Self's; the paper gives none), 25% masks,
    # omega 0.8 / gamma 0.5, Adam at 2e-5, 3,000 iterations (its figure 7 reports 3k and 6k),
    # 40-pass ensemble, whole image per step.
    "paper": FitConfig(),
    # The default: start from the shipped prior (docs/PRIORS.md) and adapt it to the image with
    # the recorrupted loss, which trains f(y) itself, so the image written and the network
    # exported are the same function. On held-out training photographs (never a reported set;
    # benchmarks/tune_prior_fit.py) the B2G loss fine-tuned from the prior lost 1-4 dB of f(y)
    # in 100 steps at any learning rate, while this gained 1-2 dB (docs/METHOD_NOTES.md, "Prior").
    "fast": FitConfig(
        model=ModelConfig(width=32, norm="none", dropout="none"),
        mask=MaskConfig(kind="bernoulli"),
        # sigma: the lower of the Haar-band and prior-residual estimates. The recorrupted loss is
        # unbiased only at the true sigma, and the fit is steep on both sides of it: 0.9 x the
        # true sigma cost -0.9 dB at sigma 25, 1.1 x -1.05 / -1.95 dB at sigma 25 / 50, 1.2 x
        # -3.3 / -5.4 (results/tune/sigma_scale.json, sigma_over.json). The Haar band reads texture
        # as noise (24.7-39.4 at sigma 25 on held-out photographs), the residual errs on other
        # images, and the lower of the two gained +0.14 dB at sigma 25 on the 8 held-out
        # photographs the rule was found on, +0.27 on 8 others (+0.02 to +0.54 each), +0.005 at
        # sigma 50 (results/tune/noise_*.json); on 4 more it came within 0.06 dB of the true sigma.
        loss=LossConfig(kind="recorrupted", noise_estimate="lower"),
        # 600 steps: +0.24 / +0.34 dB over 300 at sigma 25 / 50 on the held-out photographs
        # (benchmarks/results/tune/r2r_recipe.json), ~30 s for a 768x512 image on one busy core.
        iters=600,
        lr=3e-4,
        lr_schedule="cosine",
        batch=4,
        # 96x96 crops: +0.04 / +0.06 dB over 64x64 at sigma 25 / 50 on 4 held-out photographs and
        # +0.11 / +0.11 on 4 others (each of the 8 gained), for about twice the fitting time. 400
        # steps of them (the cost of 900 of 64x64, which bought nothing) did not gain, nor did
        # 128x128 in batches of 2, another alpha or lr (results/tune/crop96.json, crop96_check.json).
        # Kodak24: +0.06 / +0.08 dB; the 720p clip's single-frame fit: -0.17 at sigma 25.
        crop=96,
        augment=True,
        ensemble_passes=1,
        # The image written is f(y) averaged over the frame's 8 flips/turns: +0.21 / +0.21 dB over
        # f(y) itself at sigma 25 / 50 on 8 held-out photographs (at least +0.07 on each;
        # benchmarks/results/tune/self_ensemble.json), for 8 passes (~11 s at 768x512 on a busy
        # core). The checkpoint, export and video keep the single pass unless asked (mode "flips").
        self_ensemble=8,
        # bf16 autocast and channels-last where the hardware has bf16 (else float32): the same
        # PSNR (+0.01 / -0.01 dB at sigma 25 / 50) in 0.73 / 0.67 of the fitting time on 4 held-out
        # photographs (benchmarks/results/tune/fit_bf16.json); 900 bf16 steps in the old time
        # bought -0.02 / +0.03 dB, so the steps stay 600 and the fit is faster.
        bf16=True,
        channels_last=True,
        init="prior",
        output="single",
    ),
    # For tests and smoke runs: seconds, not minutes.
    "tiny": FitConfig(
        model=ModelConfig(width=8, depth=3),
        mask=MaskConfig(cycle=20),
        iters=40,
        lr=2e-3,
        batch=2,
        crop=64,
        ensemble_passes=2,
    ),
}


# B2G zero-shot from random weights, what `fast` was before there was a prior: tuned for a
# 768x512 RGB image in a few minutes on a 2-core CPU: random 64x64 crops with a batch of 4
# masks per step, width 32, Adam 3e-3 on a cosine schedule, 8-pass ensemble. On a kodim03 crop
# at sigma 25, 64x64 crops reached the PSNR of 96x96 ones at under half the cost per step, and
# lr 1e-2 or width 16 did worse (docs/METHOD_NOTES.md). Same method as the paper (dual mask,
# gradient-regularized loss, T-Standout, channel attention) plus the distillation term that
# makes the deployable f(y) denoise.
PRESETS["scratch"] = FitConfig(
    # No BatchNorm: over four 64x64 crops its statistics are noisy, the eval-mode output
    # drifted from the fitted one by up to 0.07 in mean colour, and one Kodak fit in twelve
    # collapsed to 9 dB with it (docs/METHOD_NOTES.md). Without it f(y) is the fitted function.
    model=ModelConfig(width=32, norm="none"),
    # One frame's x_m per refresh, in turn: on 8 spread 720p frames (benchmarks/bench_refresh.py)
    # this fit 2.2x faster (255 vs 549 s) and scored 28.10 vs 25.75 dB; one frame: no change.
    mask=MaskConfig(cycle=50, refresh_frames=1),
    loss=LossConfig(distill_weight=1.0),
    iters=500,
    lr=3e-3,
    lr_schedule="cosine",
    batch=4,
    crop=64,
    augment=True,
    ensemble_passes=8,
)


def preset(name: str) -> FitConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}") from None


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = _merged(base[key], value) if nested else value
    return out


def apply_changes(cfg: FitConfig, changes: dict[str, Any], source: str = "config") -> FitConfig:
    """``cfg`` with a nested mapping merged in key by key: {"loss": {"omega": 0}} changes omega
    and keeps the rest of ``loss``. Unknown keys and bad values fail with one line naming them."""
    try:
        return FitConfig.model_validate(_merged(cfg.model_dump(), changes))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InputError(f"{source}: {where}: {first['msg']}{more}") from None


def load_changes(path: Path) -> dict[str, Any]:
    """A TOML (.toml) or JSON file of config changes, as a mapping; or, when ``path`` is no file
    and its text starts with ``{``, that text read as one inline JSON object (so a one-off run
    such as ``--config '{"lr": 2e-4}'`` needs no file beside it)."""
    inline = str(path).lstrip()
    if inline.startswith("{") and not path.is_file():
        try:
            data = json.loads(inline)
        except ValueError as exc:
            raise InputError(f"--config is neither a file nor valid inline JSON: {str(exc).splitlines()[0]}") from None
        return data  # JSON text that starts with "{" can only be an object
    if not path.is_file():
        raise InputError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".toml":
            try:
                import tomllib  # Python 3.11+
            except ImportError:
                raise InputError("TOML config files need Python 3.11 or later; use JSON") from None
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise InputError(f"{path} is not valid {'TOML' if path.suffix.lower() == '.toml' else 'JSON'}: "
                         f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} must hold a table/object of config keys, not {type(data).__name__}")
    return data


class PretrainConfig(_Strict):
    """Everything `b2g-deploy pretrain` needs besides the corpus (docs/METHOD_NOTES.md, "Prior")."""

    model: ModelConfig = ModelConfig(width=32, norm="none", dropout="none")
    objective: Literal["masked", "noisy"] = Field(
        "noisy",
        description="masked: clean input, reconstruct the blind spots (MPI); noisy: synthetic noise "
        "in, the clean image the target of the masked pass and of f(y)",
    )
    steps: int = Field(40_000, ge=1, description="total steps; the schedule decays over the last fifth")
    lr: float = Field(1e-3, gt=0.0)
    batch: int = Field(8, ge=1, le=256)
    crop: int = Field(96, ge=32, description="square crop side, a multiple of 32")
    mask_rate: float = Field(0.3, gt=0.0, lt=1.0, description="blind-spot fraction of the masked pass")
    sigma_max: float = Field(55.0, ge=0.0, description="Gaussian sigma drawn from [0, sigma_max] (0..255 scale)")
    poisson_share: float = Field(0.3, ge=0.0, le=1.0, description="share of crops with Poisson-Gaussian noise")
    poisson_lam: tuple[float, float] = Field((10.0, 300.0), description="lambda range, drawn log-uniformly")
    grey: bool = Field(False, description="convert the corpus to one channel (a grey prior)")
    temporal_k: int = Field(0, ge=0, le=4, description="0: a single-frame prior; k > 0: a temporal "
                            "prior for windows of 2k+1 frames cut from photographs with synthetic motion")
    causal: bool = Field(False, description="a temporal prior for causal windows (frames t-2k..t)")
    temporal_mixer: int = Field(0, ge=0, le=256, description="a temporal prior: hidden channels of a residual "
                                "block on the summed heads at full resolution (temporal.model.HeadMixer); 0 = none. "
                                "With --init-from a prior without one, it is added at zero (the prior unchanged)")
    motion_max: float = Field(2.0, ge=0.0, le=8.0, description="largest synthetic motion, pixels per frame")
    fusion_init: Literal["zero", "mean"] = Field(
        "zero", description="a temporal prior started from a single-frame one: zero = its neighbour head "
        "starts at zero (the single-frame prior on the target); mean = the head reads the window's mean "
        "(the single-frame prior on the mean of the frames)")
    deform: float = Field(0.0, ge=0.0, le=8.0, description="largest non-rigid displacement of a temporal "
                          "prior's neighbours, px per frame (a smooth random field, bilinear)")
    occluders: float = Field(0.0, ge=0.0, le=1.0, description="share of a temporal prior's windows crossed "
                             "by a disc of another photograph moving at its own velocity (occlusion, "
                             "a second motion)")
    align: AlignMode = Field(
        "none", description="a temporal prior's noisy windows: none = as cut (the net must find the motion "
        "itself); dis / dis-fine = each neighbour warped onto the target with DIS optical flow first "
        "(the coarser / the finer flow, temporal.align), as the net's input is wherever it runs")
    pair_weight: float = Field(0.0, ge=0.0, description="a temporal prior: weight of an extra term, the squared "
                               "error of the mean of two neighbouring frames' outputs (exactly aligned, rigid synthetic "
                               "motion), which rewards errors that the output fusion can still average away")
    pair_batch: int = Field(4, ge=1, le=64, description="sequences per step for pair_weight")
    bf16: bool = Field(True, description="bfloat16 autocast (1.6x faster on this AVX512-BF16 CPU)")
    channels_last: bool = Field(True, description="NHWC memory layout (1.14x faster here with bf16)")
    noise_on_device: bool = Field(False, description="draw masks and noise on the training device "
                                  "(a GPU run's CPU spent ~0.1-0.2 s a step drawing them); the run "
                                  "then depends on the device's generator, not only on the seed")

    def check(self) -> None:
        if self.crop % 2**self.model.depth:
            raise InputError(f"crop {self.crop} must be a multiple of {2**self.model.depth}")
        if self.temporal_k and self.objective == "masked":
            # Clean neighbours would hand the net the target's value: nothing to learn.
            raise InputError("a temporal prior needs the 'noisy' objective (clean neighbours show the target)")
        if self.causal and not self.temporal_k:
            raise InputError("causal applies to a temporal prior; set temporal_k too")
        if (self.align != "none" or self.occluders or self.deform or self.pair_weight or self.temporal_mixer) \
                and not self.temporal_k:
            raise InputError("align, deform, occluders, pair_weight and temporal_mixer apply to a temporal prior; "
                             "set temporal_k too")
