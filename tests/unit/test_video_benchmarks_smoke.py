"""The video-flow benchmarks: the stream's last steps, which network a video gets (held-out
clips, a folder run as a live stream), the one-command flow and the throughput table score
small inputs and render their tables."""

from __future__ import annotations

import numpy as np
import pytest
from benchmark_modules import load_benchmark as _load


def test_the_stream_finish_benchmark_streams_scores_and_renders():
    from b2g_deploy.clipping import clipped_mean

    finish = _load("stream_finish_on_clips")
    rng = np.random.default_rng(0)
    clean = np.concatenate([np.ones((4, 3, 24, 32)), 0.3 + 0.4 * rng.random((4, 3, 24, 32))], axis=2).astype(np.float32)
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    biased = clipped_mean(clean, 25 / 255).astype(np.float32)  # a denoiser of clipped data: its white too dark
    got = {way: finish.scored(frames, list(clean)) for way, frames in finish.ways(noisy, biased, [1, 3], [(0.5, 0.3)]).items()}
    assert list(got) == ["as is (not unclipped)", "unclipped, box 1 (none)", "unclipped, box 3",
                         "unclipped, box 3, blend 0.5 at 0.3σ"]
    assert got["unclipped, box 1 (none)"]["psnr"] > got["as is (not unclipped)"]["psnr"] + 3  # the bias was the error
    assert got["unclipped, box 3, blend 0.5 at 0.3σ"]["psnr"] > got["as is (not unclipped)"]["psnr"]
    rows = [{"sigma": 25.0, "clip": 0, "way": way, **scores} for way, scores in got.items()]
    text = finish.render(rows, {"command": "c", "cpu": "cpu", "cores": 2, "date": "d", "torch": "t"}, 1, 6.0)
    assert "| unclipped, box 3 | " in text and "σ=25: PSNR | flicker | temporal error" in text

def test_the_video_default_benchmark_writes_scores_and_renders(tmp_path):
    from b2g_deploy.io.video_readers import read_frames

    default = _load("video_default_on_clips")
    rng = np.random.default_rng(0)
    clean = [rng.random((3, 16, 24)).astype(np.float32) for _ in range(10)]
    noisy = [np.round(np.clip(c + rng.normal(0, 0.1, c.shape), 0, 1) * 255).astype(np.float32) / 255 for c in clean]
    default.write_frames(tmp_path / "f", noisy)
    back = read_frames(str(tmp_path / "f"))
    assert len(back) == 10 and np.abs(np.stack(back) - np.stack(noisy)).max() < 1e-6  # order and values kept
    got = default.scored(clean, clean)
    assert got["psnr_all"] > 60 and got["flicker"] == 0 and got["temporal_error"] == 0
    worse = default.scored(noisy, clean)
    assert worse["psnr_unseen"] < 30 and worse["temporal_error"] > 0
    rows = [{"sigma": 25.0, "clip": 0, "way": way, **scores, "seconds": 1.0, "temporal_kept": temporal,
             "causal_kept": False} for (way, temporal), scores in zip(default.WAYS.items(), (worse, got))]
    text = default.render(rows, [{"command": "c", "cpu": "cpu", "cores": 2, "date": "d", "torch": "t"}])
    assert "| RGB | 25 | temporal (`--temporal`) |" in text and "per clip | +" in text
    assert text.count("| centred temporal |") == 1 and text.count("| single-frame |") == 1
    assert "720p" not in text  # the mosaics' rows (--mosaics) are named, and then explained, only when there
    text = default.render(rows + [{**r, "video": "720p RGB, as a stream"} for r in rows], [])
    assert "| 720p RGB, as a stream | 25 | temporal (`--temporal`) |" in text and "\"720p\" rows: `--mosaics`" in text
    assert "pan xS" not in text
    text = default.render(rows + [{**r, "video": "720p pan x3 RGB"} for r in rows], [])
    assert "\"pan xS\" rows: `--speed S`" in text and "| 720p pan x3 RGB | 25 |" in text and "disc xD" not in text
    text = default.render(rows + [{**r, "video": "pan x3 disc x4 RGB"} for r in rows], [])
    assert "\"disc xD\" rows: `--disc-speed D`" in text
    # What was fitted, read back per clip: a fallback shows with its count, an old row's window as unknown.
    causal, fell_back = {"temporal_kept": True, "causal_kept": True}, {"temporal_kept": False, "causal_kept": False}
    assert default.fitted([causal, causal, fell_back]) == "causal temporal (2), single-frame (1)"
    assert default.fitted([{"temporal_kept": True}]) == "temporal"
    grey = default.grey(clean[0])
    assert grey.shape == (1, 16, 24) and np.allclose(grey[0], 0.299 * clean[0][0] + 0.587 * clean[0][1] + 0.114 * clean[0][2])
    default.write_frames(tmp_path / "g", [np.round(grey * 255) / 255])
    assert read_frames(str(tmp_path / "g"))[0].shape == (1, 16, 24)


def test_the_one_command_benchmark_scores_and_renders():
    one = _load("bench_one_command")
    rng = np.random.default_rng(1)
    clean = [rng.random((3, 8, 8)).astype(np.float32) for _ in range(10)]
    noisy = [np.clip(c + rng.normal(0, 0.1, c.shape), 0, 1).astype(np.float32) for c in clean]
    scored = _load("video_default_on_clips").scored  # what the benchmark's flow_row scores with
    got, worse = scored(clean, clean), scored(noisy, clean)
    assert got["psnr_unseen"] > 60 and worse["psnr_unseen"] < got["psnr_unseen"] and worse["temporal_error"] > 0
    rows = [{"sigma": 25.0, "way": way, "frames": 10, **worse, "seconds": 2.0, "temporal_kept": way == "temporal",
             "fit_frames": 8 if way == "temporal" else 4} for way in ("single", "temporal")]
    text = one.render(rows, [{"command": "c", "cpu": "cpu", "cores": 2, "date": "d", "torch": "t"}])
    lines = [line for line in text.splitlines() if line.startswith("| 25 |")]
    assert "--temporal` (the default until" in lines[0] and "temporal on 8 frames" in lines[0]  # the former default first
    assert "--single-frame" in lines[1] and "single-frame on 4 frames" in lines[1]
    # Rows of the file run as a stream (--live) follow the file's, with the stream's command.
    text = one.render(rows + [{**r, "live": True} for r in rows], [])
    lines = [line for line in text.splitlines() if line.startswith("| 25 |")]
    assert "rtsp://" not in lines[1] and "`denoise rtsp://CAMERA -o OUT --temporal` (causal)" in lines[2]
    assert "`denoise rtsp://CAMERA -o OUT --single-frame` (a colour stream's default above" in lines[3]
    # A restreamed row (the same model in bfloat16) follows its way's own row, and says so.
    bf16 = {**rows[1], "restreamed": True, "precision": "bf16"}
    text = one.render([bf16, *rows], [])
    lines = [line for line in text.splitlines() if line.startswith("| 25 |")]
    assert "--temporal` (the default until" in lines[0] and "--precision bf16" in lines[1] and "bfloat16" in text
    lk = {**rows[1], "restreamed": True, "precision": "f32", "fuse_flow": "lk"}
    assert "`denoise VIDEO -m MODEL --fuse-flow lk`" in one.render([lk], [])
    # The default since the twelfth session (the check picks at the Haar level inside), on a file
    # and as a checked stream; the eleventh session's rows (no "noise" in the check) say theirs.
    checked = {**rows[0], "way": "default", "network_check": {"kept": "single-frame", "noise": "haar-inside"}}
    text = one.render([checked, {**checked, "live": True}], [])
    assert "`denoise VIDEO -o OUT` (the default since the twelfth session: the check picks)" in text
    assert "`denoise rtsp://CAMERA -o OUT` (the default, checked, twelfth session)" in text
    eleventh = {**checked, "network_check": {"kept": "single-frame"}}
    text = one.render([eleventh, {**eleventh, "live": True}], [])
    assert "`denoise VIDEO -o OUT` (the default, checked at the residual's noise level, eleventh session)" in text
    assert "`denoise rtsp://CAMERA -o OUT` (the default, checked at the residual's noise level" in text
    above = {**rows[0], "way": "default", "live": True}  # a colour stream above noise level 35: no check
    assert "(the default: above noise level 35, the single-frame network)" in one.render([above], [])
    skipped = {**rows[1], "way": "default",
               "network_check": {"skipped": "noise", "kept": "temporal", "noise": "haar-inside", "max_sigma_255": 55.0}}
    assert "(the default; noise above the check's limit of 55: temporal, unchecked)" in one.render([skipped], [])
    skipped = {**rows[1], "way": "default", "network_check": {"skipped": "noise", "kept": "temporal"}}
    assert "(the default in the eleventh session; noise above the check's limit of 35" in one.render([skipped], [])


def test_the_cpu_runtimes_benchmark_runs_each_runtime_and_renders(tmp_path):
    pytest.importorskip("openvino", reason="the openvino extra is not installed")
    from b2g_deploy.config import ModelConfig
    from b2g_deploy.temporal.export import export_temporal_onnx
    from b2g_deploy.temporal.model import TemporalB2GNet

    bench = _load("cpu_runtimes_on_clips")
    net = TemporalB2GNet.for_k(3, 1, False, ModelConfig(width=8, depth=3)).eval()
    graph = export_temporal_onnx(net, tmp_path / "t.onnx").path
    window = np.random.default_rng(0).random((1, 9, 16, 24), dtype=np.float32)
    got = {name: bench.runner(name, graph)(window) for name in ("ort-fp32", "ov-f32", "ov-bf16")}
    assert got["ort-fp32"].shape == (3, 16, 24)
    assert np.abs(got["ov-f32"] - got["ort-fp32"]).max() < 1e-5 < np.abs(got["ov-bf16"] - got["ort-fp32"]).max()
    rows = [{"clip": "A", "sigma": 25.0, "runtime": rt, "s_per_frame": t, "vs_first_db": db, "unseen": 30.0,
             "fused": 31.0} for rt, t, db in (("ort-fp32", 0.8, None), ("ov-bf16", 0.35, 60.5))]
    text = bench.table(rows)
    assert "| ONNX Runtime, float32 | 30.00 | 31.00 | (the reference) | 0.80 |" in text
    assert "| OpenVINO, bfloat16 | 30.00 | 31.00 | 60.5 | 0.35 |" in text
    with pytest.raises(SystemExit):
        bench.main(["--runtimes", "ort-fp32,ov-fp16"])


def test_throughput_target_is_read_against_nlm_on_the_most_threads():
    # The stream keeps both cores busy, so its target is NLM on all the cores, not on one thread;
    # older results (a single one-thread row named "nlm", no CPU seconds) still render.
    bench = _load("bench_temporal_throughput")
    row = {"frames": 24, "size": "1280x720", "runs": [10.0]}
    rows = [{**row, "method": "b2g", "label": "b2g", "seconds": 30.0, "fps": 0.8, "cpu_per_frame": 2.5},
            {**row, "method": "nlm", "label": "nlm 1", "seconds": 40.0, "fps": 0.6, "threads": 1},
            {**row, "method": "nlm-t2", "label": "nlm 2", "seconds": 20.0, "fps": 1.2, "threads": 2}]
    assert bench.baseline(rows)["method"] == "nlm-t2"
    facts = {"command": "c", "cpu": "cpu", "cores": 2, "date": "d", "torch": "t"}
    text = bench.render({"rows": rows, "run": facts})
    b2g = next(line for line in text.splitlines() if line.startswith("| b2g |"))
    assert "| 2.50 | 0.67x | **missed: 0.67x NLM's speed** |" in b2g
    one_thread = {k: v for k, v in rows[1].items() if k != "threads"}
    old = bench.render({"rows": [{k: v for k, v in rows[0].items() if k != "cpu_per_frame"}, one_thread],
                        "run": facts})
    assert "| 1.33x | met |" in old and "| – |" in old
    # Each --runtimes key names the runtime and OpenVINO precision `denoise` gets; a bad one stops the run.
    assert bench.RUNTIMES["openvino-bf16"] == ("openvino", "bf16") and bench.RUNTIMES["onnxruntime"][1] is None
    assert set(bench.RUNTIMES) == set(bench.RUNTIME_WORDS)
    with pytest.raises(SystemExit):
        bench.main(["--runtimes", "tensorrt"])


def test_a_folder_runs_as_a_live_stream_and_only_inside_the_block(tmp_path):
    import cv2

    from b2g_deploy.api import denoising
    from b2g_deploy.io.video_readers import SequenceSource

    bench = _load("video_default_on_clips")
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((8, 8, 3), 40 * i, np.uint8))
    with bench.as_live_stream():
        assert denoising._is_live(str(tmp_path))  # what is fitted and fused: as for a camera
        source = denoising._open(str(tmp_path), 3, reconnects=3)  # read: as the folder it is
        assert isinstance(source, SequenceSource) and source.info.frame_count == 3
        source.close()
    assert not denoising._is_live(str(tmp_path)) and denoising._open.__name__ == "_open"


def test_the_fusion_flow_benchmark_sets_dis_and_renders():
    from b2g_deploy.temporal import fuse

    bench = _load("fusion_flow_on_clips")
    assert bench.parse_variant("fine") == ("fine", {}, None)
    assert bench.parse_variant("fine/vr2") == ("fine", {"setVariationalRefinementIterations": 2}, None)
    assert bench.parse_variant("fine/st6/direct") == ("fine", {"setPatchStride": 6}, False)
    assert bench.parse_variant("medium/inv") == ("medium", {}, True)
    for bad in ("coarse", "fine/x2", "fine/vr", "fine/inverse"):
        with pytest.raises(SystemExit):
            bench.parse_variant(bad)
    shipped = fuse._dis("fine").getVariationalRefinementIterations()
    with bench.flow_settings({"setVariationalRefinementIterations": 1, "setPatchStride": 6}):
        made = fuse._dis("fine")
        assert made.getVariationalRefinementIterations() == 1 and made.getPatchStride() == 6
    assert fuse._dis("fine").getVariationalRefinementIterations() == shipped  # restored
    from b2g_deploy.temporal import refine

    step = refine.wiener_step
    assert bench.parse_variant("fine/luma")[1] == {bench.LUMA: 1}
    with bench.flow_settings({bench.LUMA: 1}):
        assert refine.wiener_step.keywords == {"luma_only": True}
        assert fuse._dis("fine").getPatchStride() == 4  # not a DIS setting
    assert refine.wiener_step is step
    from b2g_deploy.temporal import flow_torch, fuse_flows

    window, field = flow_torch._WINDOW, fuse_flows.dis_field
    settings = bench.parse_variant("fine/lk/lkw2/lkb1/reach2")[1]
    assert settings == {bench.LK: 1, "_WINDOW": 2, "_FLOW_BLUR": 1, bench.REACH: 2}
    with bench.flow_settings(settings):
        assert fuse_flows.dis_field is bench.lk_field and flow_torch._WINDOW == 2.0
        guide = (np.random.default_rng(0).random((40, 48)) * 255).astype(np.uint8)
        assert fuse_flows.dis_field(guide, guide, "fine").shape == (40, 48, 2)
    assert fuse_flows.dis_field is field and flow_torch._WINDOW == window
    rows = [{"clip": c, "sigma": 25.0, "variant": v, "seconds": 1.0, "psnr": p}
            for c in ("a", "b") for v, p in (("fine", 30.0), ("medium", 29.5))]
    text = bench.table(rows)
    assert "| fine | 30.00 | +0.00 | 1.0 |" in text and "| medium | 29.50 | -0.50 | 1.0 |" in text


def test_the_flop_count_adds_up_by_resolution():
    import torch

    flops = _load("network_flops")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Conv2d(8, 8, 3, stride=2, padding=1),
                              torch.nn.Conv2d(8, 3, 1))
    got = flops.count(net, 3, 16, 24)
    # 2 x out x in x taps x pixels: the first conv is the only one at 16x24
    full = 2 * 8 * 3 * 9 * 16 * 24 / 1e9
    assert got["full_resolution_gflop"] == pytest.approx(full)
    assert got["gflop"] == pytest.approx(full + 2 * 8 * 8 * 9 * 8 * 12 / 1e9 + 2 * 3 * 8 * 8 * 12 / 1e9)


def test_the_check_benchmark_counts_the_clips_it_ranked_right_and_renders():
    bench = _load("recorrupted_check_on_clips")

    def row(temporal_psnr, kept):
        return {"sigma": 25.0, "live": False, "true_psnr": {"temporal": temporal_psnr, "single": 35.0},
                "true_difference": 1e-5, "variants": {v: {"difference": 2e-5 if kept else -2e-5, "kept_temporal": kept}
                                                      for v in bench.VARIANTS}}

    text = bench.render([row(35.5, True), row(34.5, True), row(34.0, False)], [])
    line = next(line for line in text.splitlines() if "| default |" in line)
    # right on the first and third clips; it streams 35.5, 34.5 and 35.0
    assert "| 2 of 3 |" in line and f"| {np.mean([35.5, 34.5, 35.0]):.3f} |" in line and "| +0.67 |" in line
