"""The benchmark's peer and helpers: ZS-N2N denoises, noise and seeds are reproducible, and the
doc writer replaces only its own section. The benchmarks are a package of the
repository (not installed), imported from the repository root."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from benchmark_modules import REPO
from benchmark_modules import load_benchmark as _load


@pytest.fixture(scope="module")
def common():
    return _load("helpers")


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


def test_classical_peers_and_video_noise_are_written_once(smooth_image, common):
    clean = smooth_image(48, 64, 3)
    noisy = common.add_video_noise(clean, 25.0, index=3)
    assert np.array_equal(noisy, common.add_video_noise(clean, 25.0, index=3))
    assert np.allclose(noisy * 255, np.round(noisy * 255), atol=1e-4) and 0 <= noisy.min() and noisy.max() <= 1
    out, extra = common.run_nlm(noisy, "25")
    assert out.shape == clean.shape and extra["k"] == common.NLM_K[3]["25"]
    assert _psnr(out, clean) > _psnr(noisy, clean) + 2.0
    grey = common.nlm_h(noisy[:1], 20.0)
    assert grey.shape == (1, 48, 64) and grey.dtype == np.float32
    # The scripts use these and keep no copies of their own.
    for script in ("bench_video", "bench_temporal", "bench_inference", "bench_quality", "bench_refresh"):
        text = (REPO / "benchmarks" / f"{script}.py").read_text()
        calls = ("cv2.fastNlMeans", "bm3d.bm3d(", "bm3d.bm3d_rgb(", "rng.normal(")
        assert not [c for c in calls if c in text], script


def test_bench_video_streams_through_the_library():
    """The video benchmark's B2G rows are the library's fit -> export -> denoise_video, not a
    copy of that flow."""
    bench = _load("bench_video")
    text = (REPO / "benchmarks" / "bench_video.py").read_text()
    assert "api.fit(" in text and "api.export(" in text and "api.denoise_video(" in text
    assert "save_checkpoint" not in text and "export_onnx" not in text
    assert callable(bench.stream) and bench.VIDEO.name == "cockatoo.mp4"


def test_pipeline_overhead_benchmark_runs_small_and_renders_a_baseline(tmp_path, capsys):
    bench = _load("bench_pipeline_overhead")
    torch.set_num_threads(1)
    out = tmp_path / "o.json"
    bench.main(["--frames", "5", "--runs", "1", "--width", "32", "--height", "24", "--stage-frames", "5",
                "--no-doc", "--json", str(out)])
    bench.main(["--frames", "5", "--runs", "1", "--width", "32", "--height", "24", "--stage-frames", "5",
                "--no-doc", "--json", str(tmp_path / "p.json"), "--baseline", str(out), "--baseline-label", "x"])
    text = capsys.readouterr().out
    assert "| decode alone |" in text and "fps before (x)" in text and "1280x720" not in text


def test_bench_prior_only_selects_polyu_pairs_too(tmp_path):
    import argparse

    bench_prior = _load("bench_prior")
    (tmp_path / "PolyU62" / "noisy").mkdir(parents=True)
    for name in ("a_real.JPG", "b_real.JPG"):
        (tmp_path / "PolyU62" / "noisy" / name).write_bytes(b"")
    args = argparse.Namespace(sets=["PolyU62"], data=tmp_path, limit=None, stride=1, only="b_real.JPG")
    assert [case[1] for case in bench_prior.cases(args)] == ["b_real.JPG"]


def test_align_flows_variants_build_the_flows_temporal_align_uses():
    """benchmarks/align_flows.py's two named rows are temporal.align's two flows."""
    from b2g_deploy.temporal.align import _dis

    flows = _load("align_flows")
    for name, mode in (("dis (fast, finest scale 2)", "dis"), ("dis-fine (fast, finest scale 1)", "dis-fine")):
        mine, theirs = flows.make_dis(*flows.VARIANTS[name]), _dis(mode)
        assert (mine.getFinestScale(), mine.getPatchStride(), mine.getGradientDescentIterations()) == (
            theirs.getFinestScale(), theirs.getPatchStride(), theirs.getGradientDescentIterations())
    assert flows.flow_ms(flows.VARIANTS["dis (fast, finest scale 2)"]) > 0


def test_fusion_variants_parse_and_bad_ones_stop_the_run():
    from benchmarks.fuse_saved_outputs import parse_variant
    from benchmarks.tune_fusion_width import table

    assert parse_variant("k=7/reach=2") == {"k": 7, "direct_reach": 2} and parse_variant("k=3") == {"k": 3}
    assert parse_variant("k=3/strength=0.24") == {"k": 3, "strength": 0.24}
    for bad in ("reach=2", "k=x", "width=3", "k=3/strength=-1"):
        with pytest.raises(SystemExit):
            parse_variant(bad)
    rows = [{"clip": c, "sigma": 25.0, "variant": v, "psnr": p, "seconds_per_frame": 0.1}
            for c, v, p in (("a", "k=3", 30.0), ("b", "k=3", 31.0), ("a", "k=5", 30.5), ("b", "k=5", 30.9))]
    assert "| k=5 | 30.70 (+0.20; -0.10) | 0.100 |" in table(rows)


def test_int8_recipes_pick_their_convolutions_and_the_tables_render(tmp_path):
    import onnx

    from b2g_deploy.config import ModelConfig
    from b2g_deploy.temporal.export import export_temporal_onnx
    from b2g_deploy.temporal.model import TemporalB2GNet

    tune, bench = _load("tune_int8"), _load("bench_int8")
    net = TemporalB2GNet.for_k(3, 1, False, ModelConfig(width=8, depth=3)).eval()
    model = onnx.load(str(export_temporal_onnx(net, tmp_path / "t.onnx").path))
    trunk = tune._nodes(model, "trunk")
    assert len(trunk) == 3 + 2 * 3 and all("attention" not in n and "head" not in n for n in trunk)
    no_last = tune._nodes(model, "trunk-no-last")
    assert set(trunk) - set(no_last) == {n for n in trunk if "/up.2/" in n and "/convs.1/" in n}
    assert len(tune._nodes(model, "trunk-no-full")) == len(trunk) - 2
    with pytest.raises(SystemExit):
        tune._nodes(model, "everything")
    rows = [{"sigma": s, "network": n, "seconds_per_frame": t, "psnr_unseen": p, "psnr_fused_refined": p + 1}
            for s in (25.0, 50.0) for n, t, p in (("ONNX Runtime float32", 1.1, 36.0), ("ONNX Runtime int8", 0.7, 35.9))]
    text = bench.render(rows, {"command": "c", "cpu": "cpu", "cores": 2, "date": "d", "torch": "t"})
    assert "| ONNX Runtime int8 | 35.90 | 36.90 | 35.90 | 36.90 | 0.70 |" in text
    tuned = tune.table([{"recipe": "default", "sigma": 25.0, "unseen": 1.0, "fused": 2.0, "s_per_frame": 0.5}])
    assert "| default | 1.00 | 2.00 | 0.50 |" in tuned


def test_edge_window_rules_differ_only_at_the_ends_and_score_a_small_clip():
    from b2g_deploy.config import ModelConfig
    from b2g_deploy.temporal.model import TemporalB2GNet

    edges = _load("edge_windows")
    assert edges.reflected(0, 12, 2) == [2, 1, 0, 1, 2]
    assert edges.distinct_own_slots(0, 12, 2) == [4, 3, 0, 1, 2]
    assert edges.shipped(0, 12, 2) == [3, 1, 0, 2, 4]
    for t in range(2, 10):
        assert edges.reflected(t, 12, 2) == edges.distinct_own_slots(t, 12, 2) == edges.shipped(t, 12, 2)
    net = TemporalB2GNet.for_k(3, 2, False, ModelConfig(width=8, depth=2)).eval()
    rng = np.random.default_rng(0)
    clip = [np.clip(rng.random((3, 1, 1)) + 0.02 * t, 0, 1).astype(np.float32) * np.ones((3, 32, 32), np.float32)
            for t in range(6)]
    scores = {name: edges.score(net, [clip], 25.0, rule) for name, rule in edges.RULES.items()}
    assert all(np.isfinite(list(s.values())).all() for s in scores.values())
    # a 6-frame clip's windows differ between the rules at its ends, so the scores do
    assert scores["reflected (until 2026-12-06)"]["edge"] != scores["distinct, by distance (shipped)"]["edge"]
    rows = [{"wobble": 0.0, "sigma": 25.0, "rule": name, **s} for name, s in scores.items()]
    text = edges.render(rows, {"command": "c", "cpu": "cpu", "cores": 2, "date": "d", "torch": "t"}, 1)
    assert text.count("| distinct, by distance (shipped) |") == 1
    # Causal windows: the rules differ on the first 2k frames only, and are scored there.
    assert edges.reflected(1, 12, 2, causal=True) == [0, 0, 0, 0, 1] and edges.shipped(1, 12, 2, True) == [4, 3, 2, 0, 1]
    assert edges.edge_frames(12, causal=True) == [0, 1, 2, 3]
    causal = TemporalB2GNet.for_k(3, 2, True, ModelConfig(width=8, depth=2)).eval()
    scores = {name: edges.score(causal, [clip], 25.0, rule, causal=True) for name, rule in edges.CAUSAL_RULES.items()}
    assert scores["frame 0 replicated (until 2026-12-06)"]["edge"] != scores["distinct, by distance (shipped)"]["edge"]
    rows = [{"wobble": 0.0, "sigma": 25.0, "rule": name, **s} for name, s in scores.items()]
    text = edges.render(rows, {"command": "c", "cpu": "cpu", "cores": 2, "date": "d", "torch": "t"}, 1, True, "p.pt")
    assert "σ=25 first 4, alone / fused" in text and "`p.pt`" in text and "own slots" not in text


def test_int8_analysis_graphs_drop_activation_rounding_and_perturb_weights(tmp_path):
    import onnx
    import onnxruntime as ort

    from b2g_deploy.config import ModelConfig
    from b2g_deploy.temporal.export import calibration_windows, export_temporal_onnx
    from b2g_deploy.temporal.model import TemporalB2GNet

    why = _load("int8_why")
    torch.manual_seed(0)
    net = TemporalB2GNet.for_k(3, 1, False, ModelConfig(width=8, depth=3)).eval()
    net.align = "none"
    rng = np.random.default_rng(0)
    frames = np.clip(0.5 + 0.2 * rng.standard_normal((5, 3, 40, 56)), 0, 1).astype(np.float32)
    fp32 = onnx.load(str(export_temporal_onnx(net, tmp_path / "f.onnx").path))
    int8 = onnx.load(str(export_temporal_onnx(net, tmp_path / "q.onnx", int8=calibration_windows(net, frames)).path))

    def run(model, x):
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"window": x})[0]

    x = frames[:3].reshape(1, 9, 40, 56)
    weights_only = why.without_activation_rounding(int8, clip=False)
    clipped = why.without_activation_rounding(int8, clip=True)
    quantize = [n for n in int8.graph.node if n.op_type == "QuantizeLinear"]
    assert quantize and not [n for n in weights_only.graph.node if n.op_type == "QuantizeLinear"]
    assert sum(n.op_type == "Clip" for n in clipped.graph.node) >= len(quantize)
    base, q, w, c = (run(m, x) for m in (fp32, int8, weights_only, clipped))
    # rounded weights alone stay closer to float32 than the whole int8 graph; the calibration
    # windows are the input, so the clip changes next to nothing
    assert np.abs(w - base).mean() < np.abs(q - base).mean() and np.abs(c - w).max() < 1e-2
    noisy = run(why.with_weight_noise(fp32, 1), x)
    assert 0 < np.abs(noisy - base).max() < 0.05
    rows = [{"graph": g, "alone": a, "fused": a + 1} for g, a in (("float32", 36.0), ("int8", 36.1))]
    assert "| int8 | 36.10 | 37.10 | +0.10 / +0.10 |" in why.render(rows, {"command": "c", "cpu": "cpu", "cores": 2,
                                                                           "date": "d", "torch": "t"})


def test_unclip_benchmarks_score_saved_outputs_and_render(tmp_path):
    from b2g_deploy.clipping import clipped_mean

    saved, held_out = _load("unclip_saved_outputs"), _load("unclip_on_clips")
    rng = np.random.default_rng(0)
    clean = np.clip(np.concatenate([np.ones((6, 3, 24, 64)), 0.3 + 0.4 * rng.random((6, 3, 24, 64))], axis=2),
                    0, 1).astype(np.float32)
    biased = clipped_mean(clean, 25 / 255).astype(np.float16)  # a denoiser of clipped data, its white too dark
    path = tmp_path / "b2g-temporal-from-prior_s25_seed3.npy"
    np.save(path, biased)
    row = saved.score_file(path, clean, fit_frames=2, box=3)
    assert row["method"] == "b2g-temporal-from-prior" and row["seed"] == 3 and row["sigma"] == 25.0 and row["box"] == 3
    assert row["alone, unclipped"] > row["alone"] + 3  # the bias was the whole error
    text = saved.render([row], {"command": "c", "cpu": "cpu", "cores": 2, "date": "d"}, "outs")
    assert "| temporal default, alone, unclipped |" in text and "| seed 3 | mean |" in text
    noisy = np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)
    got = held_out.scores({"net": biased.astype(np.float32)}, noisy, list(clean), 25.0)["net"]
    assert got["true sigma"] > got["as is"] + 3 and abs(got["sigma_estimate"] - 25) < 2
    rows = [{"sigma": 25.0, "clip": 0, "output": "net", "near_clip_share": 0.5, **got}]
    assert "| net |" in held_out.render(rows, {"command": "c", "cpu": "cpu", "cores": 2, "date": "d", "torch": "t"}, 1, 6.0)
