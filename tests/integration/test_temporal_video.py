"""The temporal network in the product: fit --temporal, export, streaming, the noise fallback."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from b2g_deploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from b2g_deploy.config import preset
from b2g_deploy.io.video import read_frames
from b2g_deploy.temporal.export import read_temporal_metadata
from b2g_deploy.temporal.model import TemporalB2GNet, denoise_clip
from video_clips import H, N, W, clip, one_thread, run  # noqa: F401  (one_thread: an autouse fixture)

QUANT = 1.5 / 255  # outputs are written at 8 bits


# --- fit --temporal ---------------------------------------------------------------------------


def test_fit_temporal_end_to_end_then_export(tmp_path):
    # The fast preset (from the shipped prior) with 3 steps: its residuals are noise, so the
    # check passes; an untrained tiny net's residuals still hold the scene and read as correlated.
    video = clip(tmp_path / "clip.mkv")
    out = tmp_path / "first.png"
    result = run("fit", video, "--frames", 4, "--temporal", "--k", 2, "--preset", "fast", "--iters", 3,
                 "--device", "cpu", "-o", out)
    assert result.exit_code == 0, result.output
    assert "too few for k=2" in result.output  # 4 frames: k lowered to 1, and said so
    assert "temporal" in result.output and out.is_file()
    ckpt = load_checkpoint(tmp_path / "first.b2g.pt")
    assert isinstance(ckpt.net, TemporalB2GNet)
    assert ckpt.meta["temporal"]["k"] == 1 and ckpt.meta["temporal"]["causal"] is False
    record = ckpt.meta["temporal_fit"]
    assert record["loss"] == "recorrupted" and record["steps"] == 3 and abs(record["noise_correlation"]) <= 0.1
    assert record["align"] == "dis-fine" and ckpt.net.align == "dis-fine"  # flow-aligned windows by default
    assert ckpt.meta["frames"] == [0, 1, 2, 3]  # consecutive frames, not spread over the clip

    onnx = tmp_path / "t.onnx"
    exported = run("export", tmp_path / "first.b2g.pt", "--onnx", onnx)
    assert exported.exit_code == 0, exported.output
    assert "temporal" in exported.output and "parity" in exported.output
    meta = read_temporal_metadata(onnx)
    assert (meta.window, meta.k, meta.causal, meta.channels) == (3, 1, False, 1)
    again = run("export", tmp_path / "first.b2g.pt", "--onnx", onnx)
    assert again.exit_code == 2 and "exists" in again.output
    refused = run("export", tmp_path / "first.b2g.pt", "--onnx", tmp_path / "e.onnx", "--mode", "ensemble")
    assert refused.exit_code == 2 and refused.output.startswith("error:") and "temporal" in refused.output


def test_fit_temporal_falls_back_when_the_noise_repeats_across_frames(tmp_path):
    video = clip(tmp_path / "fixed.mkv", same_noise=True)
    result = run("fit", video, "--frames", 4, "--temporal", "--k", 1, "--causal", "--preset", "fast",
                 "--iters", 2, "--device", "cpu", "-o", tmp_path / "o.png")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.output.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "correlated" in notes[0] and "single-frame" in notes[0]
    ckpt = load_checkpoint(tmp_path / "o.b2g.pt")
    assert not ckpt.is_temporal and ckpt.meta["temporal_fit"]["fallback"] == "correlated noise"
    assert ckpt.meta["temporal_fit"]["noise_correlation"] > 0.5


def test_a_temporal_prior_starts_the_temporal_stage(tmp_path):
    from b2g_deploy import api
    from b2g_deploy.temporal.model import TemporalB2GNet

    # A grey k=1 temporal prior of the fast preset's network shape (1 pretraining step is enough
    # to have the file; what matters is that the fit starts from its weights).
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        cv2.imwrite(str(photos / f"p{i}.png"), np.random.default_rng(i).integers(0, 255, (40, 40), np.uint8))
    prior = tmp_path / "t1.pt"
    api.pretrain([photos], prior, steps=1, grey=True, holdout=0, device="cpu",
                 changes={"crop": 32, "batch": 2, "temporal_k": 1, "bf16": False, "motion_max": 1.0})
    video = clip(tmp_path / "clip.mkv")
    result = run("fit", video, "--frames", 4, "--temporal", "--k", 1, "--preset", "fast", "--iters", 2,
                 "--init", prior, "--device", "cpu", "-o", tmp_path / "o.png")
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(tmp_path / "o.b2g.pt")
    assert isinstance(ckpt.net, TemporalB2GNet) and ckpt.meta["temporal_fit"]["start"] == "t1.pt"
    assert ckpt.meta["init"] == "prior"  # the single-frame fit (noise check, fallback) from the shipped prior
    # A k=2 fit starts from the k=1 prior widened; a causal fit cannot start from a centred prior;
    # without --temporal it cannot start anything.
    wide = run("fit", video, "--frames", 5, "--temporal", "--k", 2, "--preset", "fast", "--iters", 1,
               "--init", prior, "--device", "cpu", "-o", tmp_path / "w.png")
    assert wide.exit_code == 0, wide.output
    assert load_checkpoint(tmp_path / "w.b2g.pt").meta["temporal_fit"]["start"] == "t1.pt, widened from k=1"
    wrong = run("fit", video, "--frames", 5, "--temporal", "--k", 1, "--causal", "--preset", "fast", "--iters", 1,
                "--init", prior, "--device", "cpu", "-o", tmp_path / "c.png")
    assert wrong.exit_code == 2 and wrong.output.startswith("error:") and "3-frame windows" in wrong.output
    single = run("fit", video, "--frames", 2, "--preset", "fast", "--iters", 1, "--init", prior,
                 "--device", "cpu", "-o", tmp_path / "s.png")
    assert single.exit_code == 2 and "--temporal" in single.output


def test_fit_temporal_refusals_are_one_line_errors(tmp_path):
    video = clip(tmp_path / "clip.mkv", n=3)
    one = run("fit", video, "--frames", 1, "--temporal", "--preset", "tiny", "--iters", 1, "--device", "cpu",
              "-o", tmp_path / "a.png")
    assert one.exit_code == 2 and one.output.startswith("error:") and "at least 2" in one.output
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.full((H, W), 128, np.uint8))
    still = run("fit", image, "--temporal", "--preset", "tiny", "--iters", 1, "--device", "cpu")
    assert still.exit_code == 2 and "temporal" in still.output
    nok = run("fit", video, "--causal", "--preset", "tiny", "--iters", 1, "--device", "cpu", "-o", tmp_path / "b.png")
    assert nok.exit_code == 2 and "--temporal" in nok.output


# --- streaming --------------------------------------------------------------------------------


def _temporal_model(tmp_path: Path, causal: bool, suffix: str) -> tuple[Path, TemporalB2GNet]:
    """The shipped grey prior as a temporal net (its output follows the target frame's level)
    with a small random neighbour head, so the neighbours in each window change the output."""
    from b2g_deploy.priors import starting_network

    single, cfg, _ = starting_network("prior", 1, preset("fast"))
    net = TemporalB2GNet.from_single_frame(single, 1, causal).eval()
    torch.manual_seed(1)
    with torch.no_grad():
        net.head.neighbours.weight.normal_(0.0, 0.02)
    ckpt = tmp_path / f"t{int(causal)}.pt"
    save_checkpoint(ckpt, Checkpoint(net, cfg, {"bit_depth": 8}))
    if suffix == ".pt":
        return ckpt, net
    onnx = tmp_path / f"t{int(causal)}.onnx"
    assert run("export", ckpt, "--onnx", onnx).exit_code == 0
    return onnx, net


@pytest.mark.parametrize("causal", [False, True], ids=["centred", "causal"])
@pytest.mark.parametrize("suffix", [".onnx", ".pt"])
def test_stream_has_one_output_frame_per_input_frame_in_order(tmp_path, causal, suffix):
    model, net = _temporal_model(tmp_path, causal, suffix)
    video = clip(tmp_path / "clip.mkv")
    out = tmp_path / "frames"  # a folder: each output PNG is named after its input frame
    result = run("denoise", video, "-m", model, "-o", out, "--device", "cpu", "--batch", 2, "--no-fuse", "--no-unclip")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(N)]
    got = np.stack([cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED)[None] / 255.0 for name in names])
    want = denoise_clip(net, torch.from_numpy(np.stack(read_frames(video)))).numpy()
    assert np.abs(got - want).max() <= QUANT  # output i is frame i's window, reflected at the end
    levels = got.mean(axis=(1, 2, 3))
    assert np.all(np.abs(np.diff(levels)) > 2 / 255)  # distinct frames: the order is checked


def test_stream_with_mode_flips_averages_each_window_over_its_flips(tmp_path):
    """`denoise VIDEO -m temporal.pt --mode flips --passes 4`: frame i is the average of its
    window's 4 flips, each output flipped back; an exported model refuses --mode."""
    from b2g_deploy.modelfile.graph import FlipsModule
    from b2g_deploy.temporal.model import clip_windows

    model, net = _temporal_model(tmp_path, False, ".pt")
    video = clip(tmp_path / "clip.mkv")
    out = tmp_path / "frames"
    result = run("denoise", video, "-m", model, "-o", out, "--device", "cpu", "--no-fuse", "--no-unclip", "--mode", "flips",
                 "--passes", 4)
    assert result.exit_code == 0, result.output
    got = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[None] / 255.0 for p in sorted(out.iterdir())])
    frames = torch.from_numpy(np.stack(read_frames(video)))
    with torch.no_grad():
        want = FlipsModule(net, 4)(clip_windows(net, frames, range(N))).numpy()
    plain = denoise_clip(net, frames).numpy()
    assert got.shape == plain.shape and np.abs(got - want).max() <= QUANT
    assert np.abs(got - plain).max() > 2 * QUANT  # the flips changed the output
    onnx = tmp_path / "t.onnx"
    assert run("export", model, "--onnx", onnx).exit_code == 0
    refused = run("denoise", video, "-m", onnx, "-o", tmp_path / "o2", "--mode", "flips")
    assert refused.exit_code == 2 and "--mode applies to .pt checkpoints" in refused.output


@pytest.mark.parametrize("causal", [False, True], ids=["centred", "causal"])
def test_stream_fuses_the_outputs_by_default_causally_for_a_causal_model(tmp_path, causal):
    from b2g_deploy.clipping import Unclipper
    from b2g_deploy.io.temporal import FUSED_BLEND, TemporalBlend
    from b2g_deploy.temporal.fuse_stream import OutputFuser

    model, net = _temporal_model(tmp_path, causal, ".onnx")
    video = clip(tmp_path / "clip.mkv")
    out = tmp_path / "frames"
    result = run("denoise", video, "-m", model, "-o", out, "--device", "cpu", "--batch", 2)
    assert result.exit_code == 0, result.output
    got = np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[None] / 255.0 for p in sorted(out.iterdir())])
    noisy = np.stack(read_frames(video))
    plain = denoise_clip(net, torch.from_numpy(noisy)).numpy()
    fuser, fused = OutputFuser(causal=causal), []
    for i, (y, o) in enumerate(zip(noisy, plain)):
        fused += fuser.push(i, y, o)
    # then, in order, what the stream does to a fused frame: unclipped, and lightly blended
    unclipper, blend = Unclipper(), TemporalBlend(*FUSED_BLEND)
    want = np.stack([blend(noisy[i], unclipper(noisy[i], f)) for i, _, f in fused + fuser.flush()])
    assert got.shape == plain.shape and np.abs(got - want).max() <= 2 * QUANT
    assert np.abs(got - plain).max() > 2 * QUANT  # it did fuse


def test_stream_fuses_with_the_flow_window_and_refinement_asked_for_and_refuses_bad_ones(tmp_path, monkeypatch):
    from b2g_deploy.temporal import fuse_stream

    asked = []

    class Recording(fuse_stream.OutputFuser):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            asked.append((self.flow, self.noisy_ring is not None, self.latency, self.device))

    monkeypatch.setattr(fuse_stream, "OutputFuser", Recording)
    model, _ = _temporal_model(tmp_path, False, ".onnx")
    video = clip(tmp_path / "clip.mkv")
    result = run("denoise", video, "-m", model, "-o", tmp_path / "frames", "--device", "cpu", "--fuse-flow", "medium")
    assert result.exit_code == 0, result.output
    assert run("denoise", video, "-m", model, "-o", tmp_path / "f2", "--device", "cpu").exit_code == 0
    assert run("denoise", video, "-m", model, "-o", tmp_path / "f3", "--device", "cpu", "--no-refine").exit_code == 0
    wide = run("denoise", video, "-m", model, "-o", tmp_path / "f4", "--device", "cpu", "--fuse-frames", 5)
    assert wide.exit_code == 0, wide.output
    assert len(list((tmp_path / "f4").iterdir())) == len(list((tmp_path / "f2").iterdir()))
    torch_fused = run("denoise", video, "-m", model, "-o", tmp_path / "f5", "--device", "cpu", "--fuse-flow", "lk")
    assert torch_fused.exit_code == 0, torch_fused.output
    assert len(list((tmp_path / "f5").iterdir())) == len(list((tmp_path / "f2").iterdir()))
    assert asked == [("medium", True, 3, "cpu"), ("fine", True, 3, "cpu"), ("fine", False, 3, "cpu"),
                     ("fine", True, 5, "cpu"), ("lk", True, 3, "cpu")]  # no CUDA here: lk's torch runs on the CPU
    refused = run("denoise", video, "-m", model, "-o", tmp_path / "o2.mkv", "--fuse-flow", "slow")
    assert refused.exit_code == 2 and "--fuse-flow must be one of fine, medium" in refused.output
    assert "Traceback" not in refused.output and not (tmp_path / "o2.mkv").exists()
    for bad in (0, 9):
        refused = run("denoise", video, "-m", model, "-o", tmp_path / "o3.mkv", "--fuse-frames", bad)
        assert refused.exit_code == 2 and "--fuse-frames must be between 1 and 8" in refused.output
        assert "Traceback" not in refused.output and not (tmp_path / "o3.mkv").exists()
    image = tmp_path / "still.png"
    cv2.imwrite(str(image), np.full((24, 32), 128, np.uint8))
    refused = run("denoise", image, "-m", model, "-o", tmp_path / "still_out.png", "--fuse-frames", 5)
    assert refused.exit_code == 2 and "apply to video input" in refused.output
    assert not (tmp_path / "still_out.png").exists()


def test_a_fused_stream_is_lightly_blended_by_default_and_a_bad_blend_is_refused(tmp_path, monkeypatch):
    from b2g_deploy.io import temporal

    asked = []

    class Recording(temporal.TemporalBlend):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            asked.append((self.strength, self.threshold))

    monkeypatch.setattr(temporal, "TemporalBlend", Recording)
    model, _ = _temporal_model(tmp_path, False, ".onnx")
    video = clip(tmp_path / "clip.mkv")
    for i, extra in enumerate(([], ["--no-fuse"], ["--blend", 0.5], ["--blend", 0], ["--no-fuse", "--blend", 0.5])):
        result = run("denoise", video, "-m", model, "-o", tmp_path / f"f{i}", "--device", "cpu", *extra)
        assert result.exit_code == 0, result.output
    assert asked == [temporal.FUSED_BLEND, (0.5, temporal.FUSED_BLEND[1]), (0.5, temporal.BLEND_THRESHOLD)]
    for bad in (-0.1, 1.0):
        refused = run("denoise", video, "-m", model, "-o", tmp_path / "o.mkv", "--blend", bad)
        assert refused.exit_code == 2 and "--blend must be in [0, 1)" in refused.output
        assert "Traceback" not in refused.output and not (tmp_path / "o.mkv").exists()


def test_stream_keeps_going_over_a_corrupt_frame(tmp_path):
    from b2g_deploy.api import denoise_video

    model, net = _temporal_model(tmp_path, False, ".onnx")
    frames = read_frames(clip(tmp_path / "clip.mkv"))
    folder = tmp_path / "seq"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"f{i:02d}.png"), np.round(frame[0] * 255).astype(np.uint8))
    (folder / "f02.png").write_bytes(b"not a png")
    out = tmp_path / "out.mkv"
    stats = denoise_video(folder, out, model, device="cpu", batch=3, fuse=False, unclip=False)
    assert (stats.written, stats.skipped) == (N - 1, 1)
    good = np.stack([f for i, f in enumerate(frames) if i != 2])
    want = denoise_clip(net, torch.from_numpy(good)).numpy()
    got = np.stack(read_frames(out))
    assert got.shape == want.shape and np.abs(got - want).max() <= QUANT


def test_one_command_flow_fits_exports_and_streams_a_temporal_net(tmp_path):
    from b2g_deploy.api import denoise_video

    video = clip(tmp_path / "clip.mkv")
    out = tmp_path / "out.mkv"
    stats = denoise_video(video, out, fit_frames=4, preset="fast", fit_seconds=0.5, device="cpu", temporal=True, k=1,
                          causal=True)
    assert stats.written == N and stats.checkpoint == tmp_path / "out.b2g.pt"
    assert load_checkpoint(tmp_path / "out.b2g.pt").is_temporal
    meta = read_temporal_metadata(tmp_path / "out.onnx")
    assert (meta.k, meta.causal) == (1, True)
    frames = read_frames(out)
    assert len(frames) == N and frames[0].shape == (1, H, W)
    from b2g_deploy.io.video import open_source

    source = open_source(out)
    assert source.info.fps == pytest.approx(10.0)
    source.close()


def test_temporal_model_on_an_image_is_a_one_line_error(tmp_path):
    model, _ = _temporal_model(tmp_path, False, ".onnx")
    image = tmp_path / "img.png"
    cv2.imwrite(str(image), np.full((H, W), 128, np.uint8))
    result = run("denoise", image, "-m", model, "-o", tmp_path / "o.png")
    assert result.exit_code == 2 and result.output.startswith("error:") and "temporal" in result.output
    flag = run("denoise", clip(tmp_path / "c.mkv"), "-m", model, "-o", tmp_path / "o.mkv", "--temporal")
    assert flag.exit_code == 2 and "-m" in flag.output


def test_temporal_stage_library_blindspot_loss_and_short_clips():
    from b2g_deploy.api import fit_temporal_stage
    from b2g_deploy.errors import InputError
    from b2g_deploy.priors import starting_network

    single, _, _ = starting_network("prior", 1, preset("fast"))
    rng = np.random.default_rng(3)
    frames = torch.from_numpy((0.5 + rng.normal(0, 0.1, (3, 1, H, W))).clip(0, 1).astype(np.float32))
    cfg = preset("tiny").with_overrides(iters=2)  # not the recorrupted loss: the blind-spot one
    stage = fit_temporal_stage(frames, single, cfg, k=3, causal=False)
    assert stage.temporal and stage.net.window == 3  # 3 frames allow k=1 only
    assert stage.record["loss"] == "blindspot" and stage.record["steps"] == 2
    assert len(stage.notes) == 1 and "k=1" in stage.notes[0]
    with pytest.raises(InputError, match="at least 2"):
        fit_temporal_stage(frames[:1], single, cfg)
