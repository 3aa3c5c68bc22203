"""The priors ship inside the package: they load, have the `fast` network's shape, and are
in a wheel built from the source tree (so a non-editable install finds them)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from b2g_deploy.checkpoint import load_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.errors import CheckpointError
from b2g_deploy.priors import SHIPPED, check_compatible, shipped_prior_path, temporal_prior_name, temporal_starting_network

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("channels", [1, 3])
def test_shipped_priors_load_with_the_fast_network_shape(channels):
    ckpt = load_checkpoint(shipped_prior_path(channels))
    assert ckpt.channels == channels and ckpt.meta["kind"] == "prior"
    check_compatible(ckpt.config.model, preset("fast").model, "shipped prior")
    # Pretrained on the training photographs: all of them, or (a run continued on a GPU, whose
    # photographs travel in a 64 MiB pack) part of them on top of a prior that saw all.
    meta = ckpt.meta
    assert meta["steps"] > 0 and meta["corpus"]["files"] > 400
    assert meta["corpus"]["files"] > 1000 or meta.get("init_from_steps", 0) >= 10_000
    assert shipped_prior_path(channels).stat().st_size < 5_000_000


def test_the_shipped_temporal_priors_start_k2_fits_and_only_those():
    from b2g_deploy.temporal.model import TemporalB2GNet

    fast = preset("fast")
    net, label = temporal_starting_network(None, 3, 2, False, fast)
    assert isinstance(net, TemporalB2GNet) and (net.window, net.target_index) == (5, 2)
    assert label == temporal_prior_name(3, 2, False) == "prior_rgb_t2.pt"
    meta = load_checkpoint(shipped_prior_path(3).with_name(label)).meta
    assert meta["kind"] == "prior" and meta["pretrain_config"]["temporal_k"] == 2 and meta["steps"] > 0
    causal, label = temporal_starting_network(None, 3, 2, True, fast)
    assert (causal.window, causal.target_index) == (5, 4) and label == "prior_rgb_t2c.pt"
    # A wider window starts from the narrower prior of its shape, widened.
    wide, label = temporal_starting_network(None, 3, 3, True, fast)
    assert (wide.window, wide.target_index) == (7, 6) and label == "prior_rgb_t2c.pt, widened from k=2"
    window = torch.rand(1, 21, 32, 32)
    with torch.no_grad():
        assert torch.allclose(wide.eval()(window), causal.eval()(window[:, 6:]), atol=1e-5)
    given, label = temporal_starting_network(shipped_prior_path(3).with_name("prior_rgb_t2.pt"), 3, 4, False, fast)
    assert (given.window, given.target_index) == (9, 4) and label == "prior_rgb_t2.pt, widened from k=2"
    with pytest.raises(CheckpointError, match="asks for k=3 causal"):  # a centred prior for a causal fit
        temporal_starting_network(shipped_prior_path(3).with_name("prior_rgb_t2.pt"), 3, 3, True, fast)
    # Grey video: centred and causal k=2 priors pretrained on grey windows.
    for causal, (window, slot, name) in ((False, (5, 2, "prior_grey_t2.pt")), (True, (5, 4, "prior_grey_t2c.pt"))):
        grey, label = temporal_starting_network(None, 1, 2, causal, fast)
        assert (grey.window, grey.target_index, grey.channels, label) == (window, slot, 1, name)
        meta = load_checkpoint(shipped_prior_path(1).with_name(label)).meta
        assert meta["kind"] == "prior" and meta["pretrain_config"]["temporal_k"] == 2 and meta["steps"] > 0
        assert meta["pretrain_config"]["causal"] == causal and meta["pretrain_config"]["grey"]
        assert shipped_prior_path(1).with_name(label).stat().st_size < 5_000_000
    # No packaged prior for narrower windows or a fit from scratch: the single-frame start.
    assert temporal_starting_network(None, 3, 1, False, fast) == (None, "single-frame fit")
    assert temporal_starting_network("none", 3, 2, False, fast) == (None, "single-frame fit")


def test_a_missing_shipped_prior_names_the_reinstall(monkeypatch, tmp_path):
    import b2g_deploy.priors as priors

    monkeypatch.setitem(priors.SHIPPED, 3, "no_such_prior.pt")
    with pytest.raises(CheckpointError, match="reinstall"):
        shipped_prior_path(3)


@pytest.mark.slow
def test_the_priors_are_in_a_wheel(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    wheel = next(tmp_path.glob("b2g_deploy-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in [*SHIPPED.values(), temporal_prior_name(3, 2, False), temporal_prior_name(3, 2, True)]:
        assert f"b2g_deploy/data/{name}" in names
