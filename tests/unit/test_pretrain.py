"""Pretraining a prior: the loss goes down, runs resume where they stopped, bad corpora and
resumes are refused with one line, and a grey prior can start from an RGB one."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from b2g_deploy import api
from b2g_deploy.cli import app
from b2g_deploy.config import ModelConfig, PretrainConfig
from b2g_deploy.errors import B2GError, InputError
from b2g_deploy.fit.pretrain import PretrainState, draw_inputs, lr_at, pretrain, pretrain_loss
from b2g_deploy.io.corpus import load_corpus
from b2g_deploy.model import B2GNet
from b2g_deploy.priors import grey_from_rgb, load_prior_state

TINY = {"model": {"width": 8, "depth": 3, "norm": "none", "dropout": "none"}, "crop": 32, "batch": 4,
        "bf16": False, "channels_last": False}
runner = CliRunner()


@pytest.fixture
def corpus_dir(tmp_path, smooth_image):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(6):
        img = smooth_image(48 + 8 * i, 64, 3, seed=i)
        img = np.roll(img, 5 * i, axis=2)  # different content per file
        cv2.imwrite(str(folder / f"im{i}.png"), (img[::-1].transpose(1, 2, 0) * 255).astype(np.uint8))
    return folder


def _cfg(**changes) -> PretrainConfig:
    return PretrainConfig.model_validate({**TINY, **changes})


def _eval_loss(net, corpus, cfg) -> float:
    from b2g_deploy.io.corpus import random_crops

    rng = np.random.default_rng(99)
    x = torch.from_numpy(random_crops(corpus, 16, cfg.crop, rng))
    gen = torch.Generator().manual_seed(5)
    y, mask = draw_inputs(x, cfg, gen)
    with torch.no_grad():
        return pretrain_loss(net, x, y, mask, cfg)[0].item()


@pytest.mark.parametrize("objective", ["masked", "noisy"])
def test_pretraining_lowers_the_loss(corpus_dir, objective):
    cfg = _cfg(objective=objective, steps=120, lr=3e-3)
    corpus = load_corpus([corpus_dir], grey=False, min_side=cfg.crop)
    torch.manual_seed(0)
    state = PretrainState(B2GNet(3, cfg.model))
    before = _eval_loss(state.net, corpus, cfg)
    result = pretrain(corpus, cfg, state, validate_every=10**9)
    assert state.step == 120 and result.steps_this_run == 120
    assert _eval_loss(state.net, corpus, cfg) < 0.5 * before


def test_resume_continues_from_the_step_it_stopped_at(corpus_dir, tmp_path):
    cfg_file = tmp_path / "tiny.json"
    cfg_file.write_text(json.dumps(TINY))
    out = tmp_path / "p.pt"
    report = api.pretrain([corpus_dir], out, steps=5, changes=json.loads(cfg_file.read_text()), holdout=1)
    assert report.steps == 5 and out.is_file()
    state, cfg, meta = load_prior_state(out)
    assert state.step == 5 and state.optimizer is not None and cfg.objective == "noisy"
    assert meta["kind"] == "prior" and meta["corpus"]["files"] == 5 and len(meta["corpus"]["sha256"]) == 64
    assert len(meta["corpus"]["holdout"]) == 1
    out2 = tmp_path / "p2.pt"
    report = api.pretrain([corpus_dir], out2, steps=9, resume=out)
    assert report.steps == 9 and report.steps_this_run == 4
    # Resuming in place needs --force; another objective is refused.
    with pytest.raises(B2GError, match="--force"):
        api.pretrain([corpus_dir], out, steps=12, resume=out)
    with pytest.raises(InputError, match="objective"):
        api.pretrain([corpus_dir], tmp_path / "p3.pt", steps=12, resume=out, objective="masked")
    assert not (tmp_path / "p3.pt").exists()


def test_every_run_on_a_corpus_holds_out_the_same_photographs_whatever_its_seed(corpus_dir, tmp_path):
    # A later stage started from a prior with another --seed must not train on the photographs
    # the earlier stages were validated on.
    a = tmp_path / "a.pt"
    api.pretrain([corpus_dir], a, steps=1, changes=TINY, holdout=2, seed=0)
    b = api.pretrain([corpus_dir], tmp_path / "b.pt", steps=1, changes=TINY, holdout=2, seed=5, init_from=a)
    assert b.steps == 1
    held = [load_prior_state(p)[2]["corpus"]["holdout"] for p in (a, tmp_path / "b.pt")]
    assert held[0] == held[1] and len(held[0]) == 2


def test_a_resumed_run_draws_what_an_uninterrupted_one_would(corpus_dir, tmp_path):
    whole = api.pretrain([corpus_dir], tmp_path / "a.pt", steps=6, changes=TINY, holdout=0)
    api.pretrain([corpus_dir], tmp_path / "b.pt", steps=3, changes=TINY, holdout=0)
    api.pretrain([corpus_dir], tmp_path / "c.pt", steps=6, resume=tmp_path / "b.pt")
    a, _, _ = load_prior_state(tmp_path / "a.pt")
    c, _, _ = load_prior_state(tmp_path / "c.pt")
    assert whole.steps == 6
    for (name, pa), pc in zip(a.net.state_dict().items(), c.net.state_dict().values()):
        assert torch.allclose(pa, pc, atol=1e-5), name


def test_bad_corpora_are_refused_or_skipped(tmp_path, corpus_dir):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image files"):
        api.pretrain([empty], tmp_path / "x.pt", changes=TINY)
    (empty / "broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(empty / "small.png"), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(InputError, match="no usable image.*2 skipped"):
        api.pretrain([empty], tmp_path / "x.pt", changes=TINY)
    assert not (tmp_path / "x.pt").exists()
    # Bad files among good ones are skipped and named.
    (corpus_dir / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    report = api.pretrain([corpus_dir], tmp_path / "ok.pt", steps=2, changes=TINY, holdout=0)
    assert report.skipped == ["broken.jpg (not a readable image)"]


def test_cli_pretrain_one_line_errors(tmp_path, corpus_dir):
    cfg_file = tmp_path / "tiny.json"
    cfg_file.write_text(json.dumps(TINY))
    res = runner.invoke(app, ["pretrain", str(corpus_dir), "-o", str(tmp_path / "p.pt"), "--steps", "3",
                              "--config", str(cfg_file), "--device", "cpu", "--holdout", "1"])
    assert res.exit_code == 0, res.output
    assert "step 3/3" in res.output
    for args, expect in [
        (["--steps", "3"], "exists"),
        (["--objective", "blurry"], "unknown objective"),
        (["--resume", str(cfg_file)], "not a b2g-deploy checkpoint"),
    ]:
        out = tmp_path / ("p.pt" if expect == "exists" else "q.pt")
        res = runner.invoke(app, ["pretrain", str(corpus_dir), "-o", str(out), *args])
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert lines[-1].startswith("error:") and expect in lines[-1], res.output


def test_cli_temporal_k_keeps_a_causal_window_the_config_asks_for(tmp_path, corpus_dir):
    from b2g_deploy.checkpoint import load_checkpoint

    out = tmp_path / "c.pt"
    res = runner.invoke(app, ["pretrain", str(corpus_dir), "-o", str(out), "--steps", "1", "--temporal-k", "1",
                              "--config", json.dumps({**TINY, "causal": True, "motion_max": 1.0}),
                              "--device", "cpu", "--holdout", "1"])
    assert res.exit_code == 0, res.output
    net = load_checkpoint(out).net
    assert (net.window, net.target_index) == (3, 2)  # causal: the target last


def test_resume_may_lower_the_learning_rate_and_nothing_else(tmp_path, corpus_dir):
    first = tmp_path / "p.pt"
    api.pretrain([corpus_dir], first, steps=2, changes=TINY, holdout=0)
    with pytest.raises(InputError, match=r"cannot change batch \(4 in the run\)"):
        api.pretrain([corpus_dir], first, resume=first, force=True, steps=4, changes={"batch": 8})
    with pytest.raises(InputError, match="lr must be positive"):
        api.pretrain([corpus_dir], first, resume=first, force=True, steps=4, changes={"lr": -1})
    report = api.pretrain([corpus_dir], first, resume=first, force=True, steps=4, changes={"lr": 5e-4})
    assert any("-> 0.0005 from step 2" in n for n in report.notes)
    _, cfg, _ = load_prior_state(first)
    assert cfg.lr == 5e-4 and cfg.steps == 4
    # the run's own settings repeated (its command line, as the CLI passes --temporal-k) are no change
    api.pretrain([corpus_dir], first, resume=first, force=True, steps=5, changes={"batch": TINY["batch"]})
    assert load_prior_state(first)[1].steps == 5


def test_lr_schedule_is_stable_then_decays():
    cfg = PretrainConfig(steps=10_000, lr=1e-3)
    assert lr_at(cfg, 0) < lr_at(cfg, 499) <= 1e-3
    assert lr_at(cfg, 5_000) == lr_at(cfg, 7_999) == 1e-3
    assert lr_at(cfg, 9_999) < 2e-5
    # Extending the run before the decay changes nothing already done.
    assert lr_at(cfg.model_copy(update={"steps": 20_000}), 7_999) == 1e-3


def test_fit_to_budget_ends_the_decayed_run_inside_the_time_budget(tmp_path, corpus_dir, monkeypatch):
    import types

    import b2g_deploy.fit.pretrain as loop

    out = tmp_path / "p.pt"
    with pytest.raises(InputError, match="needs --time-budget"):
        api.pretrain([corpus_dir], out, changes=TINY, fit_to_budget=True)
    # A clock that advances 10 ms a reading: a steady speed, as a run on a machine of its own has.
    now = [0.0]

    def clock() -> float:
        now[0] += 0.01
        return now[0]

    monkeypatch.setattr(loop, "time", types.SimpleNamespace(perf_counter=clock))
    report = api.pretrain([corpus_dir], out, steps=10**7, time_budget=3.0, changes=TINY, holdout=0,
                          fit_to_budget=True)
    _, cfg, _ = load_prior_state(out)
    # The step count came from the measured speed, the run reached it (not cut off by the
    # clock) and its last learning rate is the decayed 1%.
    assert 10 < cfg.steps < 10**7 and report.steps == cfg.steps == report.total_steps
    assert any("measured speed" in n for n in report.notes)
    assert report.seconds < 3.0
    assert lr_at(cfg, cfg.steps - 1) < 0.02 * cfg.lr


def test_noise_on_device_is_the_same_run_on_the_cpu(corpus_dir, tmp_path):
    # On the CPU the device's generator is the CPU's: the option changes where, not what.
    a = api.pretrain([corpus_dir], tmp_path / "a.pt", steps=3, changes=TINY, holdout=0)
    b = api.pretrain([corpus_dir], tmp_path / "b.pt", steps=3, changes={**TINY, "noise_on_device": True}, holdout=0)
    assert a.steps == b.steps == 3
    sa, _, _ = load_prior_state(tmp_path / "a.pt")
    sb, cfg, _ = load_prior_state(tmp_path / "b.pt")
    assert cfg.noise_on_device
    for (name, pa), pb in zip(sa.net.state_dict().items(), sb.net.state_dict().values()):
        assert torch.equal(pa, pb), name


def test_grey_from_rgb_computes_the_rgb_network_on_grey_input():
    torch.manual_seed(0)
    # Train mode: no clamp to [0, 1], which would act per colour before the mean.
    rgb = B2GNet(3, ModelConfig(width=8, depth=3, norm="none", dropout="none")).train()
    grey = grey_from_rgb(rgb).train()
    g = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        expected = rgb(g.expand(1, 3, 32, 32)).mean(dim=1, keepdim=True)
        assert torch.allclose(grey(g), expected, atol=1e-5)


def test_grey_from_rgb_converts_a_temporal_network_frame_by_frame():
    from b2g_deploy.temporal.model import TemporalB2GNet

    torch.manual_seed(0)
    cfg = ModelConfig(width=8, depth=3, norm="none", dropout="none")
    for causal in (False, True):
        rgb = TemporalB2GNet.for_k(3, 2, causal, cfg, align="dis").train()
        grey = grey_from_rgb(rgb).train()
        assert (grey.channels, grey.window, grey.target_index, grey.align) == (1, 5, rgb.target_index, "dis")
        g = torch.rand(1, 5, 32, 32)
        with torch.no_grad():  # each grey frame as three equal colour planes, in its slot
            expected = rgb(g.repeat_interleave(3, dim=1)).mean(dim=1, keepdim=True)
            assert torch.allclose(grey(g), expected, atol=1e-5)


def test_sigterm_stops_a_pretraining_run_with_a_resumable_prior(tmp_path, corpus_dir):
    import signal
    import subprocess
    import sys
    import time

    cfg_file = tmp_path / "tiny.json"
    cfg_file.write_text(json.dumps(TINY))
    out = tmp_path / "p.pt"
    cmd = [sys.executable, "-c", "from b2g_deploy.cli import main; main()", "pretrain", str(corpus_dir), "-o", str(out),
           "--steps", "1000000", "--config", str(cfg_file), "--device", "cpu", "--holdout", "0", "--save-every", "0.2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.time() + 60
    while time.time() < deadline and not out.exists():  # the first periodic save: it is running
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    state, _, _ = load_prior_state(out)
    assert state.step > 0 and state.optimizer is not None


def test_the_pair_term_trains_and_is_recorded(tmp_path, corpus_dir):
    from b2g_deploy.checkpoint import load_checkpoint

    out = tmp_path / "pair.pt"
    api.pretrain([corpus_dir], out, steps=2, holdout=1,
                 changes={**TINY, "temporal_k": 1, "motion_max": 1.0, "pair_weight": 1.0, "pair_batch": 2})
    history = load_checkpoint(out).meta["history"]
    assert history[-1]["pair"] > 0 and math.isfinite(history[-1]["pair"])


def test_aligned_pretraining_windows_show_the_net_its_neighbours_warped_onto_the_target(smooth_image):
    """align "dis": the noisy neighbours come in warped onto the target, as a fit or a stream
    gives them to the net; the target frame itself is left as drawn."""
    cfg = _cfg(temporal_k=1, crop=64, sigma_max=10.0, poisson_share=0.0)
    clean = smooth_image(64, 96, 3, seed=3)
    # A window of one scene moving 3 px a frame: slot 1 the target.
    x = torch.from_numpy(np.concatenate([clean[:, :, 3 * j : 3 * j + 64] for j in range(3)])[None]).float()
    raw, _ = draw_inputs(x, cfg, torch.Generator().manual_seed(0))
    warped, _ = draw_inputs(x, cfg.model_copy(update={"align": "dis"}), torch.Generator().manual_seed(0))
    inner = (slice(None), slice(8, -8), slice(8, -8))  # away from the borders the flow cannot see past
    target = x[0, 3:6][inner]
    assert torch.equal(warped[0, 3:6], raw[0, 3:6])
    for j in (0, 2):
        before = (raw[0, 3 * j : 3 * j + 3][inner] - target).abs().mean()
        after = (warped[0, 3 * j : 3 * j + 3][inner] - target).abs().mean()
        assert after < 0.5 * before, (j, float(before), float(after))
    with pytest.raises(InputError, match="align, deform, occluders, pair_weight and temporal_mixer apply to a temporal prior"):
        _cfg(align="dis").check()


def test_a_temporal_prior_learns_from_its_neighbours(corpus_dir):
    """Same steps, same data: the 3-frame prior's f(y) beats the single-frame prior's, because
    each neighbour is the target again with independent noise."""
    from b2g_deploy.fit.pretrain import clean_batch
    from b2g_deploy.temporal.model import TemporalB2GNet

    losses = {}
    for k in (0, 1):
        # Static windows and 800 steps of a depth-2 net: with fewer the tiny net is still learning
        # to denoise at all and both nets are alike (measured on photographs: no gap at 400
        # steps, -21% MSE at 800).
        cfg = _cfg(objective="noisy", steps=800, lr=3e-3, temporal_k=k, motion_max=0.0,
                   sigma_max=50.0, poisson_share=0.0, model={**TINY["model"], "depth": 2})
        corpus = load_corpus([corpus_dir], grey=False, min_side=cfg.crop + 4)
        torch.manual_seed(0)
        net = TemporalB2GNet.for_k(3, 1, False, cfg.model) if k else B2GNet(3, cfg.model)
        state = PretrainState(net)
        pretrain(corpus, cfg, state, validate_every=10**9)
        rng, gen = np.random.default_rng(7), torch.Generator().manual_seed(7)
        x, target = clean_batch(corpus, cfg.model_copy(update={"batch": 32}), rng)
        y, _ = draw_inputs(x, cfg, gen)
        with torch.no_grad():
            losses[k] = ((state.net(y) - target) ** 2).mean().item()
    assert losses[1] < 0.9 * losses[0], losses


def test_temporal_priors_save_resume_and_start_from_a_single_frame_prior(tmp_path, corpus_dir):
    from b2g_deploy.checkpoint import load_checkpoint
    from b2g_deploy.temporal.model import TemporalB2GNet

    single = tmp_path / "single.pt"
    api.pretrain([corpus_dir], single, steps=2, changes=TINY, holdout=1)
    temporal = tmp_path / "t.pt"
    report = api.pretrain([corpus_dir], temporal, steps=2, init_from=single, holdout=1,
                          changes={**TINY, "temporal_k": 1})
    assert any("neighbour head zero" in n for n in report.notes)
    ckpt = load_checkpoint(temporal)
    assert isinstance(ckpt.net, TemporalB2GNet) and ckpt.net.window == 3
    assert (ckpt.meta["init_from"], ckpt.meta["init_from_steps"]) == ("single.pt", 2)
    resumed = api.pretrain([corpus_dir], temporal, resume=temporal, force=True, steps=3)
    assert resumed.steps == 3 and resumed.steps_this_run == 1
    # A head mixer added to a temporal prior starts at zero, so the run starts from the prior itself.
    mixed = tmp_path / "mixed.pt"
    report = api.pretrain([corpus_dir], mixed, steps=1, init_from=temporal, holdout=1,
                          changes={**TINY, "temporal_k": 1, "temporal_mixer": 4})
    assert any("4-channel head mixer added at zero" in n for n in report.notes)
    assert load_checkpoint(mixed).net.mixer == 4 and load_prior_state(mixed)[1].temporal_mixer == 4
    with pytest.raises(InputError, match="4-channel head mixer"):
        api.pretrain([corpus_dir], tmp_path / "m2.pt", steps=2, init_from=mixed, holdout=1,
                     changes={**TINY, "temporal_k": 1, "temporal_mixer": 8})
    with pytest.raises(InputError, match="temporal_mixer"):
        api.pretrain([corpus_dir], tmp_path / "m3.pt", steps=1, holdout=1, changes={**TINY, "temporal_mixer": 4})
    # Starting from the single-frame prior: the temporal net is that prior on the target frame.
    start, _, steps = __import__("b2g_deploy.api.pretrain", fromlist=["_start_from"])._start_from(
        single, _cfg(temporal_k=1), [])
    s, _, _ = load_prior_state(single)
    assert steps == s.step == 2
    w = torch.rand(1, 9, 32, 32)
    with torch.no_grad():
        assert torch.allclose(start.eval()(w), s.net.eval()(w[:, 3:6]), atol=1e-6)
    notes: list[str] = []  # or reading the window's mean (fusion_init "mean")
    mean_start, _, _ = __import__("b2g_deploy.api.pretrain", fromlist=["_start_from"])._start_from(
        single, _cfg(temporal_k=1, fusion_init="mean"), notes)
    assert "window's mean" in notes[0]
    with torch.no_grad():
        head = mean_start.head(w)[..., 1:-1, 1:-1]
        assert torch.allclose(head, s.net.head(w.view(1, 3, 3, 32, 32).mean(1))[..., 1:-1, 1:-1], atol=1e-5)
    with pytest.raises(InputError, match="noisy"):
        api.pretrain([corpus_dir], tmp_path / "m.pt", steps=2, changes={**TINY, "temporal_k": 1, "objective": "masked"})
    with pytest.raises(InputError, match="temporal prior for 3-frame centred windows; this run is single-frame"):
        api.pretrain([corpus_dir], tmp_path / "x.pt", steps=2, init_from=temporal, changes=TINY)
    with pytest.raises(InputError, match="3-frame centred windows; this run reads 5-frame causal ones"):
        api.pretrain([corpus_dir], tmp_path / "c.pt", steps=2, init_from=temporal,
                     changes={**TINY, "temporal_k": 2, "causal": True})
    # A wider window of the same shape starts from the narrower prior, widened.
    wide = api.pretrain([corpus_dir], tmp_path / "w.pt", steps=2, init_from=temporal, holdout=1,
                        changes={**TINY, "temporal_k": 2})
    assert any("widened from k=1" in n for n in wide.notes)
    assert load_checkpoint(tmp_path / "w.pt").net.window == 5
