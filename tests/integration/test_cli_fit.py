"""`b2g-deploy fit` end to end on the bundled sample, Ctrl-C, and bad input."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from b2g_deploy.checkpoint import load_checkpoint
from b2g_deploy.cli import app

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
NOISY = SAMPLES / "kodim03_256_sigma25.png"
CLEAN = SAMPLES / "kodim03_256_clean.png"
runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_fit_on_the_sample_writes_image_and_checkpoint(tmp_path):
    out, ckpt = tmp_path / "den.png", tmp_path / "den.pt"
    res = run("fit", NOISY, "-o", out, "--checkpoint", ckpt, "--preset", "tiny", "--device", "cpu", "--reference", CLEAN)
    assert res.exit_code == 0, res.output
    assert "PSNR noisy" in res.output
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    raw = torch.load(ckpt, weights_only=True)
    meta = raw["meta"]
    assert meta["channels"] == 3 and meta["bit_depth"] == 8 and meta["preset"] == "tiny"
    assert meta["steps"] == 40 and meta["history"]
    # Existing outputs are kept unless --force.
    again = run("fit", NOISY, "-o", out, "--checkpoint", ckpt, "--preset", "tiny")
    assert again.exit_code == 2 and "--force" in again.output
    # Fine-tuning from the checkpoint.
    tuned = run("fit", NOISY, "-o", tmp_path / "t.png", "--checkpoint", tmp_path / "t.pt", "--preset", "tiny",
                "--init", ckpt, "--iters", "3", "--single-pass")
    assert tuned.exit_code == 0, tuned.output
    assert load_checkpoint(tmp_path / "t.pt").meta["init"] == "den.pt"


def test_sixteen_bit_grey_in_sixteen_bit_out(tmp_path):
    src = tmp_path / "g16.png"
    rng = np.random.default_rng(0)
    cv2.imwrite(str(src), rng.integers(0, 65535, (40, 48), dtype=np.uint16))
    res = run("fit", src, "--preset", "tiny", "--iters", "3", "--passes", "1")
    assert res.exit_code == 0, res.output
    out = cv2.imread(str(tmp_path / "g16_b2g.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (40, 48)
    assert (tmp_path / "g16_b2g.b2g.pt").exists()


def test_ctrl_c_still_writes_a_loadable_checkpoint_and_output(tmp_path, monkeypatch):
    import b2g_deploy.fit.loop as loop

    real_step, calls = loop._step, {"n": 0}

    def interrupted_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "_step", interrupted_step)
    out, ckpt = tmp_path / "o.png", tmp_path / "o.pt"
    res = run("fit", NOISY, "-o", out, "--checkpoint", ckpt, "--preset", "tiny")
    assert res.exit_code == 130, res.output  # interrupted: say so in the exit status
    back = load_checkpoint(ckpt)
    assert back.meta["interrupted"] and back.meta["steps"] == 4
    assert cv2.imread(str(out)).shape == (256, 256, 3)


def _bad_files(tmp_path):
    alpha = tmp_path / "alpha.png"
    cv2.imwrite(str(alpha), np.zeros((32, 32, 4), np.uint8))
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((32, 1, 3), np.uint8))
    text = tmp_path / "text.png"
    text.write_text("not an image")
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(NOISY.read_bytes()[:500])
    nan = tmp_path / "nan.tif"
    arr = np.zeros((32, 32), np.float32)
    arr[1, 1] = np.nan
    cv2.imwrite(str(nan), arr)
    return [tmp_path / "missing.png", alpha, tiny, text, trunc, nan]


def test_bad_images_give_one_line_errors_and_no_output(tmp_path):
    for bad in _bad_files(tmp_path):
        out = tmp_path / f"{bad.stem}_out.png"
        res = run("fit", bad, "-o", out, "--preset", "tiny")
        assert res.exit_code == 2, (bad, res.output)
        assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
        assert not out.exists()
    assert not list(tmp_path.glob(".*part*"))


@pytest.mark.parametrize("kind", ["grey", "pickled", "options"])
def test_bad_init_and_options(tmp_path, kind):
    out = tmp_path / "o.png"
    if kind == "grey":
        grey = tmp_path / "g.png"
        cv2.imwrite(str(grey), np.zeros((32, 32), np.uint8))
        assert run("fit", grey, "--preset", "tiny", "--iters", "2", "--passes", "1").exit_code == 0
        res = run("fit", NOISY, "-o", out, "--init", tmp_path / "g_b2g.b2g.pt")
        assert "1-channel" in res.output
    elif kind == "pickled":
        evil = tmp_path / "evil.pt"
        torch.save({"format": "something else", "x": [1, 2]}, evil)
        res = run("fit", NOISY, "-o", out, "--init", evil)
        assert "not a b2g-deploy checkpoint" in res.output
    else:
        res = run("fit", NOISY, "-o", out, "--preset", "nope")
        assert "unknown preset" in res.output
        res = run("fit", NOISY, "-o", out, "--iters", "0")
        assert res.exit_code == 2 and "--iters" in res.output
    assert res.exit_code == 2 and not out.exists()


def test_config_file_changes_the_fit_and_bad_ones_write_nothing(tmp_path):
    good = tmp_path / "s2s.toml"
    good.write_text('iters = 2\n[mask]\nkind = "bernoulli"\n[model]\ndropout = "none"\n')
    out, ckpt = tmp_path / "o.png", tmp_path / "o.pt"
    res = run("fit", NOISY, "-o", out, "--checkpoint", ckpt, "--preset", "tiny", "--config", good, "--single-pass")
    assert res.exit_code == 0, res.output
    loaded = load_checkpoint(ckpt)
    assert (loaded.config.mask.kind, loaded.config.model.dropout, loaded.meta["steps"]) == ("bernoulli", "none", 2)
    assert loaded.meta["config_file"] == "s2s.toml"

    bad = tmp_path / "bad.toml"
    bad.write_text("[loss]\nomegaa = 0\n")
    res = run("fit", NOISY, "-o", tmp_path / "b.png", "--checkpoint", tmp_path / "b.pt", "--preset", "tiny",
              "--config", bad)
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [f"error: {bad}: loss.omegaa: Extra inputs are not permitted"]
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "b.pt").exists()


def test_a_self_ensemble_output_averages_flips_and_the_checkpoint_stays_f_of_y(tmp_path):
    cfg = tmp_path / "x8.json"
    cfg.write_text('{"iters": 2, "output": "single", "self_ensemble": 8}')
    outs, said = {}, {}
    for name, extra in (("x8", []), ("single", ["--single-pass"])):
        out = tmp_path / f"{name}.png"
        res = run("fit", NOISY, "-o", out, "--checkpoint", tmp_path / f"{name}.pt", "--preset", "tiny",
                  "--config", cfg, "--reference", CLEAN, *extra)
        assert res.exit_code == 0, res.output
        outs[name], said[name] = cv2.imread(str(out)).astype(int), res.output
    assert "(single pass, mean of 8 flips/rotations;" in said["x8"]
    assert "(single pass;" in said["single"]
    assert np.abs(outs["x8"] - outs["single"]).max() > 0
    assert load_checkpoint(tmp_path / "x8.pt").config.self_ensemble == 8


def test_fit_starts_from_the_shipped_prior_and_beats_scratch_at_the_same_steps(tmp_path):
    """The default preset starts from the prior; at the same (small) step count a fit from the
    prior is far ahead of one from random weights with the same recipe."""
    res = run("fit", NOISY, "-o", tmp_path / "p.png", "--iters", "20", "--device", "cpu", "--reference", CLEAN)
    assert res.exit_code == 0, res.output
    assert "started from prior" in res.output
    prior_psnr = float(res.output.split("output ")[-1].split(" dB")[0])
    scratch = run("fit", NOISY, "-o", tmp_path / "s.png", "--iters", "20", "--device", "cpu", "--reference", CLEAN,
                  "--init", "none")
    assert scratch.exit_code == 0, scratch.output
    scratch_psnr = float(scratch.output.split("output ")[-1].split(" dB")[0])
    assert prior_psnr > scratch_psnr + 3.0
    assert prior_psnr > 28.0  # noisy input: 20.5 dB


def test_outputs_never_overwrite_the_input_or_each_other(tmp_path):
    noisy = tmp_path / "n.png"
    noisy.write_bytes(NOISY.read_bytes())
    for args, expect in [
        (["-o", tmp_path / "x.png", "--checkpoint", tmp_path / "x.png", "--force"], "both be written"),
        (["-o", noisy, "--force"], "overwrite the input"),
        (["-o", tmp_path / "y.png", "--checkpoint", tmp_path / "m.onnx"], "*.pt"),
    ]:
        res = run("fit", noisy, *args, "--preset", "tiny")
        assert res.exit_code == 2 and res.output.startswith("error:"), res.output
        assert expect in res.output
    assert noisy.read_bytes() == NOISY.read_bytes()
    assert not (tmp_path / "x.png").exists()


def test_a_prior_of_another_shape_or_channel_count_is_refused(tmp_path):
    from b2g_deploy.priors import shipped_prior_path

    grey = tmp_path / "g.png"
    cv2.imwrite(str(grey), cv2.imread(str(NOISY), cv2.IMREAD_GRAYSCALE))
    res = run("fit", grey, "-o", tmp_path / "o.png", "--init", shipped_prior_path(3), "--iters", "2")
    assert res.exit_code == 2 and "3-channel" in res.output, res.output
    res = run("fit", NOISY, "-o", tmp_path / "o.png", "--init", shipped_prior_path(3), "--preset", "tiny")
    assert res.exit_code == 2 and "network shape" in res.output, res.output


def test_a_time_budget_too_short_for_one_step_says_so(tmp_path):
    res = run("fit", NOISY, "-o", tmp_path / "o.png", "--time-budget", "1e-9", "--preset", "tiny")
    assert res.exit_code == 0, res.output
    assert "before the first step" in res.output


def test_threads_must_be_positive(tmp_path):
    res = run("fit", NOISY, "-o", tmp_path / "o.png", "--threads", "0", "--preset", "tiny")
    assert res.exit_code == 2 and "--threads" in res.output
    assert not (tmp_path / "o.png").exists()
