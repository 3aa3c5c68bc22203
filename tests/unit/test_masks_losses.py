import pytest
import torch

from b2g_deploy.config import LossConfig, MaskConfig
from b2g_deploy.fit.losses import b2g_loss, content_residual, gradient_deviation
from b2g_deploy.fit.masks import blind_probability, detail_map, sample_mask


def test_bernoulli_mask_rate_is_25_percent():
    like = torch.zeros(4, 3, 128, 128)
    prob = blind_probability(None, MaskConfig(kind="bernoulli"), like)
    mask = sample_mask(prob, torch.Generator().manual_seed(0))
    assert mask.shape == (4, 1, 128, 128)
    assert abs((1 - mask).mean().item() - 0.25) < 0.01


def test_dual_mask_masks_detail_pixels_less_and_keeps_the_overall_rate():
    cfg = MaskConfig(kind="dual", detail_window=1, detail_threshold=40.0)
    y = torch.full((1, 3, 64, 64), 0.5)
    estimate = y.clone()
    estimate[..., :, :16] += 0.3  # a quarter of the image: the estimate misses detail there
    detail = detail_map(y, estimate, cfg)
    assert detail[..., :, :16].all() and not detail[..., :, 16:].any()
    prob = blind_probability(detail, cfg, y)
    masks = sample_mask(prob.expand(64, 1, 64, 64), torch.Generator().manual_seed(1))
    blind = 1 - masks
    assert blind[..., :, :16].mean() < blind[..., :, 16:].mean()
    assert abs(blind.mean().item() - 0.25) < 0.01
    assert abs(blind[..., :, :16].mean().item() - 0.125) < 0.01


def test_detail_window_averages_out_isolated_noise():
    cfg1 = MaskConfig(detail_window=1, detail_threshold=40.0)
    cfg5 = MaskConfig(detail_window=5, detail_threshold=40.0)
    y = torch.zeros(1, 1, 32, 32)
    estimate = y.clone()
    estimate[0, 0, 10, 10] = 0.5  # one outlier pixel
    assert detail_map(y, estimate, cfg1).sum() == 1
    assert detail_map(y, estimate, cfg5).sum() == 0


def test_content_residual_counts_blind_spots_only():
    a = torch.ones(1, 1, 4, 4)
    y = torch.zeros(1, 1, 4, 4)
    mask = torch.ones(1, 1, 4, 4)
    mask[..., 0, 0] = 0
    d = content_residual(a, y, mask)
    assert d.sum() == 1 and d[..., 0, 0] == 1


def test_gradient_deviation_on_hand_made_inputs():
    a = torch.zeros(1, 1, 4, 4)
    b = torch.arange(4.0).repeat(4, 1)[None, None]  # ramp along x: d/dx = 1
    gx, gy = gradient_deviation(a, b, torch.ones_like(a), blind_only=False)
    assert torch.equal(gx[..., :, :3], torch.ones(1, 1, 4, 3)) and gx[..., :, 3].abs().sum() == 0
    assert gy.abs().sum() == 0
    gx_blind, _ = gradient_deviation(a, b, torch.ones_like(a), blind_only=True)
    assert gx_blind.abs().sum() == 0  # no blind spots: nothing counted


def test_gradient_loss_value_on_hand_made_inputs():
    y = torch.zeros(1, 1, 4, 4)
    a = torch.zeros(1, 1, 4, 4)
    a[..., 1, 1] = 1.0
    mask = torch.ones(1, 1, 4, 4)
    mask[..., 1, 1] = 0.0
    b = a.clone()  # same gradients: d_g = 0, so the loss is (1/2 + 1/2 + gamma) * mean(d_c^2)
    cfg = LossConfig(omega=0.8, gamma=0.5)
    loss, parts = b2g_loss(a, b, y, mask, cfg)
    assert parts["gradient"] == 0.0
    assert loss.item() == pytest.approx((1 + 0.5) / 16)
    blind, _ = b2g_loss(a, b, y, mask, LossConfig(kind="blindspot"))
    assert blind.item() == pytest.approx(1 / 16)


def test_gradient_term_trains_the_full_pass_unless_stopped():
    y = torch.rand(1, 1, 8, 8)
    mask = (torch.rand(1, 1, 8, 8) > 0.25).float()
    a = torch.rand(1, 1, 8, 8, requires_grad=True)
    b = torch.rand(1, 1, 8, 8, requires_grad=True)
    loss, _ = b2g_loss(a, b, y, mask, LossConfig())
    loss.backward()
    assert b.grad is not None and b.grad.abs().sum() > 0


def test_distillation_term_ties_full_pass_values():
    y = torch.zeros(1, 1, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    a = torch.zeros(1, 1, 8, 8)
    b = torch.full((1, 1, 8, 8), 0.5)  # flat: no gradient difference, only an offset
    plain, _ = b2g_loss(a, b, y, mask, LossConfig())
    tied, parts = b2g_loss(a, b, y, mask, LossConfig(distill_weight=1.0))
    assert plain.item() == pytest.approx(0.0)
    assert parts["distill"] == pytest.approx(0.25)
    assert tied.item() == pytest.approx(0.25)


def _refreshed_frames(state, before):
    return [i for i in range(state.prob.shape[0]) if not torch.equal(state.prob[i], before[i])]


def test_partial_refresh_visits_frames_in_turn_and_full_refresh_all():
    from b2g_deploy.config import preset
    from b2g_deploy.fit.loop import _prepare, _refresh_mask
    from b2g_deploy.model import B2GNet

    cfg = preset("tiny")
    cfg = cfg.model_copy(update={"mask": cfg.mask.model_copy(update={"kind": "dual", "refresh_frames": 1})})
    torch.manual_seed(0)
    net = B2GNet(3, cfg.model)
    frames = torch.rand(3, 3, 32, 32)  # noise: far from any estimate, so a refreshed map changes
    state = _prepare(frames, net, cfg)
    visited = []
    for _ in range(4):
        before = state.prob.clone()
        _refresh_mask(state, net, cfg)
        visited.append(_refreshed_frames(state, before))
    assert visited[:3] == [[0], [1], [2]] and visited[3] in ([0], [])  # frame 0 again (its map may repeat)
    state = _prepare(frames, net, cfg)
    before = state.prob.clone()
    _refresh_mask(state, net, cfg, every_frame=True)
    assert _refreshed_frames(state, before) == [0, 1, 2]


def test_noise_level_estimate_is_close_on_a_smooth_image(smooth_image):
    from b2g_deploy.fit.noise_level import estimate_sigma

    clean = torch.from_numpy(smooth_image(128, 128, 3))
    gen = torch.Generator().manual_seed(0)
    for sigma in (10.0, 25.0, 50.0):
        noisy = clean + sigma / 255.0 * torch.randn(clean.shape, generator=gen)
        assert abs(estimate_sigma(noisy) * 255.0 - sigma) < 0.08 * sigma
    assert estimate_sigma(clean) * 255.0 < 2.0


def test_recorrupted_fit_trains_the_full_pass_towards_the_clean_image(smooth_image):
    """R2R needs no clean image: a few steps from random weights lower f(y)'s error."""
    from b2g_deploy.config import FitConfig, LossConfig, MaskConfig, ModelConfig
    from b2g_deploy.fit import fit, single_pass

    clean = torch.from_numpy(smooth_image(64, 64, 3))
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    cfg = FitConfig(model=ModelConfig(width=8, depth=3, norm="none", dropout="none"),
                    mask=MaskConfig(kind="bernoulli"), loss=LossConfig(kind="recorrupted"),
                    iters=150, lr=3e-3, batch=2, crop=32, ensemble_passes=1)
    torch.manual_seed(0)
    result = fit(noisy, cfg, seed=0)
    assert result.noise_sigma is not None and abs(result.noise_sigma - 25.5) < 4.0
    err_noisy = ((noisy - clean) ** 2).mean()
    err_fit = ((single_pass(result.net, noisy) - clean) ** 2).mean()
    assert err_fit < 0.5 * err_noisy


def test_a_bf16_channels_last_fit_learns_and_hands_back_a_float32_contiguous_net(smooth_image, monkeypatch):
    from b2g_deploy.config import FitConfig, LossConfig, MaskConfig, ModelConfig
    from b2g_deploy.fit import fit, single_pass

    clean = torch.from_numpy(smooth_image(64, 64, 3))
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(1))
    cfg = FitConfig(model=ModelConfig(width=8, depth=3, norm="none", dropout="none"),
                    mask=MaskConfig(kind="bernoulli"), loss=LossConfig(kind="recorrupted"),
                    iters=150, lr=3e-3, batch=2, crop=32, ensemble_passes=1, bf16=True, channels_last=True)
    torch.manual_seed(0)
    monkeypatch.setattr("b2g_deploy.fit.loop.bf16_is_fast", lambda device: True)
    result = fit(noisy, cfg, seed=0)
    assert result.bf16
    params = list(result.net.parameters())
    assert all(p.dtype == torch.float32 for p in params)
    assert all(p.is_contiguous() for p in params)  # export and checkpoints see the usual layout
    err_fit = ((single_pass(result.net, noisy) - clean) ** 2).mean()
    assert err_fit < 0.5 * ((noisy - clean) ** 2).mean()
    with pytest.raises(ValueError):
        FitConfig(bf16="sometimes")
    # Where bf16 would be emulated (no AVX512-BF16/AMX, or a GPU without it) the fit stays float32.
    monkeypatch.setattr("b2g_deploy.fit.loop.bf16_is_fast", lambda device: False)
    assert not fit(noisy, cfg.with_overrides(iters=2), seed=0).bf16


def test_signal_dependence_separates_shot_noise_from_gaussian(smooth_image):
    from b2g_deploy.fit.noise_level import signal_dependence

    clean = torch.from_numpy(smooth_image(128, 128, 3)).clamp(0.02, 1.0)
    gen = torch.Generator().manual_seed(0)
    gaussian = clean + 25 / 255 * torch.randn(clean.shape, generator=gen)
    shot = torch.poisson(30 * clean, generator=gen) / 30
    assert signal_dependence(gaussian, clean) < 1.3
    assert signal_dependence(shot, clean) > 2.0


def test_shot_share_sees_shot_noise_where_the_image_has_no_dark_third(smooth_image):
    from b2g_deploy.config import LossConfig
    from b2g_deploy.fit.noise_level import shot_noise_model, shot_share, signal_dependence

    clean = 0.55 + 0.3 * torch.from_numpy(smooth_image(128, 128, 3))  # bright, like Set9's F16
    gen = torch.Generator().manual_seed(0)
    shot = torch.poisson(30 * clean, generator=gen) / 30
    gaussian = clean + 25 / 255 * torch.randn(clean.shape, generator=gen)
    limits = LossConfig()
    assert signal_dependence(shot, clean) < limits.signal_dependence_limit  # the ratio alone misses it
    assert shot_share(clean, *shot_noise_model(shot, clean)) > limits.shot_share_limit
    assert shot_share(clean, *shot_noise_model(gaussian, clean)) < 0.3


def test_a_fit_from_a_prior_can_read_sigma_from_the_prior_residual():
    """On fine texture the Haar band reads the texture as noise; the residual of a prior that
    knows the image (here: returns the clean image) reads the noise alone."""
    from b2g_deploy.config import FitConfig, LossConfig, MaskConfig, ModelConfig
    from b2g_deploy.fit import fit
    from b2g_deploy.fit.noise_level import RESIDUAL_GAIN
    from b2g_deploy.model import B2GNet

    class Oracle(B2GNet):
        def forward(self, x, mask=None):
            return x * 0 + self.target + 0 * self.tail.bias.sum()

    gen = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    clean = (0.5 + 0.3 * torch.sin(2.5 * xx) * torch.sin(2.1 * yy)).expand(3, 64, 64).clone()  # fine texture
    noisy = clean + 15 / 255 * torch.randn(clean.shape, generator=gen)
    cfg = FitConfig(model=ModelConfig(width=8, depth=3, norm="none", dropout="none"),
                    mask=MaskConfig(kind="bernoulli"), loss=LossConfig(kind="recorrupted", shot_noise="ignore"),
                    iters=1, lr=1e-6, batch=1, crop=None, ensemble_passes=1)
    net = Oracle(3, cfg.model)
    net.target = clean[None]
    wavelet = fit(noisy, cfg, net=net, seed=0).noise_sigma
    resid_cfg = cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"noise_estimate": "prior_residual"})})
    resid = fit(noisy, resid_cfg, net=net, seed=0).noise_sigma
    assert wavelet > 25  # the texture read as noise
    assert abs(resid / RESIDUAL_GAIN - 15) < 1.0
    lower_cfg = cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"noise_estimate": "lower"})})
    assert fit(noisy, lower_cfg, net=net, seed=0).noise_sigma == min(wavelet, resid)


def test_a_recorrupted_fit_from_a_prior_models_shot_noise(smooth_image):
    from b2g_deploy.config import FitConfig, LossConfig, MaskConfig, ModelConfig
    from b2g_deploy.fit import fit
    from b2g_deploy.model import B2GNet

    class Identity(B2GNet):  # a "prior" that returns its input: the residual is the noise
        def forward(self, x, mask=None):
            return x * 0 + self.target + 0 * self.tail.bias.sum()

    cfg = FitConfig(model=ModelConfig(width=8, depth=3, norm="none", dropout="none"),
                    mask=MaskConfig(kind="bernoulli"), loss=LossConfig(kind="recorrupted"),
                    iters=5, lr=1e-3, batch=2, crop=None, ensemble_passes=1)
    clean = torch.from_numpy(smooth_image(64, 64, 3)).clamp(0.02, 1.0)
    net = Identity(3, cfg.model)
    net.target = clean[None]
    shot = torch.poisson(30 * clean, generator=torch.Generator().manual_seed(0)) / 30
    result = fit(shot, cfg, net=net, seed=0)  # default: keep the prior
    assert result.steps == 0 and result.noise_model["signal_dependence"] > 2
    modelled = fit(shot, cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"shot_noise": "model"})}),
                   net=net, seed=0)
    assert modelled.steps == 5 and modelled.noise_sigma is None
    assert abs(modelled.noise_model["a"] - 1 / 30) < 0.012
