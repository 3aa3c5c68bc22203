"""Temporal checkpoints: the window travels in meta, load_checkpoint rebuilds the right class."""

from __future__ import annotations

import pytest
import torch

from b2g_deploy.checkpoint import Checkpoint, checkpoint_is_temporal, load_checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.errors import CheckpointError, InputError
from b2g_deploy.model import B2GNet
from b2g_deploy.temporal.model import TemporalB2GNet

CFG = preset("tiny")


@pytest.mark.parametrize("k,causal,align,mixer", [(1, False, "none", 0), (2, True, "dis", 0), (1, False, "dis", 5)])
def test_temporal_checkpoint_round_trip(tmp_path, k, causal, align, mixer):
    torch.manual_seed(0)
    net = TemporalB2GNet.for_k(3, k, causal, CFG.model, align=align, mixer=mixer).eval()
    path = tmp_path / "t.pt"
    save_checkpoint(path, Checkpoint(net, CFG, {"bit_depth": 8, "temporal": {"k": 7}}))  # meta copy is replaced
    assert checkpoint_is_temporal(path)
    ckpt = load_checkpoint(path, channels=3)
    assert isinstance(ckpt.net, TemporalB2GNet) and ckpt.is_temporal
    assert ckpt.meta["temporal"] == {"k": k, "causal": causal, "window": 2 * k + 1,
                                     "target_index": 2 * k if causal else k, "align": align,
                                     **({"mixer": mixer} if mixer else {})}  # files without a mixer read as before
    assert (ckpt.net.align, ckpt.net.mixer) == (align, mixer)
    assert (ckpt.net.window, ckpt.net.target_index) == (net.window, net.target_index)
    x = torch.rand(1, net.window * 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(ckpt.net(x), net(x))


def test_single_frame_checkpoints_load_as_before(tmp_path):
    path = tmp_path / "s.pt"
    save_checkpoint(path, Checkpoint(B2GNet(1, CFG.model), CFG, {"bit_depth": 8}))
    ckpt = load_checkpoint(path)
    assert type(ckpt.net) is B2GNet and not ckpt.is_temporal and "temporal" not in ckpt.meta
    assert not checkpoint_is_temporal(path) and not checkpoint_is_temporal(tmp_path / "missing.pt")


def test_damaged_temporal_meta_is_a_checkpoint_error(tmp_path):
    path = tmp_path / "t.pt"
    save_checkpoint(path, Checkpoint(TemporalB2GNet.for_k(1, 1, False, CFG.model), CFG, {}))
    payload = torch.load(path, weights_only=True)
    payload["meta"]["temporal"] = {"k": 2, "causal": False}  # weights are for k=1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)
    payload["meta"]["temporal"] = {"k": "one", "causal": False}
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="temporal"):
        load_checkpoint(path)


def test_single_frame_runtime_and_export_refuse_a_temporal_checkpoint(tmp_path):
    from b2g_deploy.export.onnx_export import export_onnx
    from b2g_deploy.runtimes.factory import load_runtime

    path = tmp_path / "t.pt"
    save_checkpoint(path, Checkpoint(TemporalB2GNet.for_k(1, 1, False, CFG.model), CFG, {}))
    with pytest.raises(InputError, match="temporal"):
        load_runtime(path)
    with pytest.raises(CheckpointError, match="temporal"):
        export_onnx(path, tmp_path / "t.onnx")
