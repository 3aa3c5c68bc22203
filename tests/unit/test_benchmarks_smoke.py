"""The benchmark's peer and helpers: ZS-N2N denoises, noise and seeds are reproducible, and the
doc writer replaces only its own section. The benchmarks are scripts, not a package, so their
modules are loaded from their files."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # bench scripts import each other by bare name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def common():
    return _load("_common")


@pytest.fixture(scope="module")
def zsn2n():
    return _load("zsn2n")


def _psnr(x, clean):
    return 10 * np.log10(1.0 / np.mean((np.clip(x, 0, 1) - clean) ** 2))


def test_zsn2n_denoises_a_small_image(smooth_image, common, zsn2n):
    torch.set_num_threads(1)
    clean = smooth_image(48, 48, 3)
    noisy = common.add_noise(clean, "25", seed=3)
    out, seconds = zsn2n.denoise_zsn2n(noisy, iters=150, seed=0)
    assert out.shape == clean.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert _psnr(out, clean) > _psnr(noisy, clean) + 3.0
    assert seconds > 0


def test_zsn2n_downsamplers_average_the_diagonals(zsn2n):
    x = torch.arange(16.0).view(1, 1, 4, 4)
    d1, d2 = zsn2n.downsample_pair(x)
    assert d1[0, 0, 0, 0] == (0 + 5) / 2 and d2[0, 0, 0, 0] == (1 + 4) / 2
    assert d1.shape == (1, 1, 2, 2)


def test_zsn2n_checkpoints_are_called_with_fit_seconds(smooth_image, common, zsn2n):
    seen = []
    noisy = common.add_noise(smooth_image(16, 16, 1), "50", seed=0)
    zsn2n.denoise_zsn2n(noisy, iters=4, checkpoints={2: lambda s, t, net: seen.append((s, t))})
    assert [s for s, _ in seen] == [2] and seen[0][1] > 0


def test_noise_and_seeds_are_deterministic(smooth_image, common):
    clean = smooth_image(32, 32, 3)
    seed = common.noise_seed("Kodak24", "kodim01.png", "25")
    assert seed == common.noise_seed("Kodak24", "kodim01.png", "25")
    assert seed != common.noise_seed("Kodak24", "kodim01.png", "50")
    a, b = common.add_noise(clean, "25", seed), common.add_noise(clean, "25", seed)
    assert np.array_equal(a, b)
    assert abs(float((a - clean).std()) - 25 / 255) < 0.01
    assert a.min() < 0 or a.max() > 1  # Gaussian noise is not clipped (docs/METHOD_NOTES.md "Evaluation")
    p = common.add_noise(clean, "p30", seed)
    assert np.allclose(p * 30, np.round(p * 30), atol=1e-4)  # Poisson counts / lambda
    assert abs(common.noise_std(p, "p30") - np.sqrt(clean.mean() / 30)) < 0.01


def test_parse_noises_rejects_bad_input(common):
    assert common.parse_noises("25, p30") == ["25", "p30"]
    with pytest.raises(SystemExit):
        common.parse_noises("25,q3")


def test_replace_section_keeps_other_sections(tmp_path, common):
    doc = tmp_path / "B.md"
    doc.write_text("# Benchmarks\n\n## Other\n\nkeep me\n\n## Mine\n\nold\n\n## Last\n\nkeep too\n")
    common.replace_section(doc, "## Mine", "new")
    text = doc.read_text()
    assert "keep me" in text and "keep too" in text and "new" in text and "old" not in text
    common.replace_section(doc, "## Added", "fresh")
    assert doc.read_text().rstrip().endswith("fresh")


def test_fit_with_snapshots_copies_the_weights_as_they_were(smooth_image, common):
    from b2g_deploy.config import preset

    cfg = preset("tiny").with_overrides(iters=4)
    y = torch.from_numpy(smooth_image(64, 64, 3))
    result, snaps = common.fit_with_snapshots(y, cfg, every=0.0, seed=0, device="cpu")
    assert [s[1] for s in snaps] == [1, 2, 3, 4]  # every step, the last being the final net
    first, last = snaps[0][2], snaps[-1][2]
    assert any(not torch.equal(first[k], last[k]) for k in first)  # copies, not live references
    assert all(torch.equal(last[k], v) for k, v in result.net.state_dict().items())


def test_sweep_changes_merge_into_the_preset():
    sweep = _load("bench_sweep")
    cfg = sweep.variant_config("scratch", {"loss": {"omega": 0.0}}, iters=12, budget=3.0)
    assert (cfg.loss.omega, cfg.loss.distill_weight, cfg.iters, cfg.time_budget) == (0.0, 1.0, 12, 3.0)
