import pytest
import torch

from b2g_deploy.config import ModelConfig
from b2g_deploy.model import B2GNet, PartialConv2d, TStandout, denoise, gradient_magnitude, stochastic_mode

TINY = ModelConfig(width=8, depth=3)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(8, 8), (13, 29), (33, 17), (64, 40)])
def test_denoise_keeps_shape_for_any_size(channels, size):
    net = B2GNet(channels, TINY).eval()
    x = torch.rand(2, channels, *size)
    out = denoise(net, x)
    assert out.shape == x.shape
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_one_pixel_wide_input_is_padded_not_rejected():
    net = B2GNet(1, TINY).eval()
    assert denoise(net, torch.rand(1, 1, 20, 1)).shape == (1, 1, 20, 1)


def test_rejects_unsupported_channel_count():
    with pytest.raises(ValueError):
        B2GNet(2, TINY)


def test_partial_conv_renormalises_by_visible_fraction():
    conv = PartialConv2d(1, 1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    x = torch.ones(1, 1, 6, 6)
    mask = torch.ones(1, 1, 6, 6)
    mask[0, 0, 2, 2] = 0.0
    full = conv(x)
    masked = conv(x, mask)
    # A constant image summed over a 3x3 window is 9 wherever the window lies inside; hiding a
    # pixel and renormalising by 9/8 gives 9 back, so interior values are unchanged.
    assert torch.allclose(masked[0, 0, 1:5, 1:5], full[0, 0, 1:5, 1:5])
    assert torch.allclose(full[0, 0, 2, 2], torch.tensor(9.0))


def test_partial_conv_without_mask_equals_all_ones_mask():
    conv = PartialConv2d(3, 4)
    x = torch.rand(2, 3, 10, 12)
    assert torch.allclose(conv(x), conv(x, torch.ones(2, 1, 10, 12)), atol=1e-6)


def test_partial_conv_ignores_blind_pixel_values():
    conv = PartialConv2d(1, 2)
    mask = (torch.rand(1, 1, 16, 16) > 0.25).float()
    x = torch.rand(1, 1, 16, 16)
    noise = torch.rand(1, 1, 16, 16) * (1 - mask)
    assert torch.allclose(conv(x, mask), conv(x + noise, mask), atol=1e-6)


def test_tstandout_never_drops_high_gradient_activations():
    torch.manual_seed(0)
    layer = TStandout(p=0.9, threshold=25.0, norm="max").train()
    x = torch.zeros(1, 2, 32, 32)
    x[:, :, :, 16:] = 1.0  # an edge: column 15 has gradient 1 = 255 on the paper's scale
    x += 0.001 * torch.rand_like(x)  # flat elsewhere: tiny gradients, far below 25/255
    spared = layer.spared(x)
    assert spared[:, :, :, 15].all()
    assert spared.float().mean() < 0.1
    for _ in range(5):
        out = layer(x)
        assert torch.equal(out[spared], x[spared])
    # and the rest is dropped at about p
    dropped = (layer(x) == 0)[~spared].float().mean()
    assert 0.85 < dropped < 0.95


def test_tstandout_is_identity_in_eval_and_standard_mode_drops_everywhere():
    x = torch.rand(1, 4, 16, 16)
    assert torch.equal(TStandout(0.3, 25.0).eval()(x), x)
    torch.manual_seed(0)
    standard = TStandout(0.5, 0.0, mode="standard").train()
    assert (standard(x) == 0).float().mean() > 0.4


def test_eval_single_pass_is_deterministic_and_stochastic_mode_is_not():
    net = B2GNet(3, TINY)
    x = torch.rand(1, 3, 32, 32)
    net.eval()
    assert torch.equal(net(x), net(x))
    stochastic_mode(net)
    assert not torch.equal(net(x), net(x))
    assert not net.up[0].norm.training  # BatchNorm stays on running statistics


def test_gradient_magnitude_of_a_ramp():
    x = torch.arange(8.0).repeat(8, 1)[None, None] / 8
    g = gradient_magnitude(x)
    assert torch.allclose(g[..., :-1, :-1], torch.full((7, 7), 1 / 8), atol=1e-5)


def test_without_batchnorm_eval_equals_train_when_dropout_is_off():
    net = B2GNet(3, ModelConfig(width=8, depth=3, norm="none", dropout="none"))
    x = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    net.train()
    fitted = net(x).clamp(0, 1)
    net.eval()
    assert torch.allclose(fitted, net(x))


def test_gradient_layer_options_build_and_run():
    for fusion in ("concat", "add", "none"):
        net = B2GNet(1, ModelConfig(width=8, depth=3, gradient_layer=fusion)).eval()
        assert net(torch.rand(1, 1, 16, 16)).shape == (1, 1, 16, 16)


def test_self_ensemble_undoes_each_flip_so_the_average_is_equivariant():
    from b2g_deploy.fit.ensemble import self_ensemble, single_pass

    torch.manual_seed(0)
    net = B2GNet(3, ModelConfig(width=8, depth=2, norm="none", dropout="none")).eval()
    y = torch.rand(3, 32, 32)
    assert torch.equal(self_ensemble(net, y, 1), single_pass(net, y))
    x8 = self_ensemble(net, y, 8)
    assert (x8 - single_pass(net, y)).abs().max() > 1e-3  # a random net is far from equivariant
    # Averaged over all eight symmetries, a turned or mirrored input gives the turned output.
    assert torch.allclose(self_ensemble(net, torch.rot90(y, 1, (-2, -1)), 8), torch.rot90(x8, 1, (-2, -1)), atol=1e-5)
    assert torch.allclose(self_ensemble(net, y.flip(-2), 8), x8.flip(-2), atol=1e-5)
    # Non-square frames keep their shape.
    assert self_ensemble(net, torch.rand(3, 20, 36), 4).shape == (3, 20, 36)
