"""`b2g-deploy export`, `denoise` and `info` end to end, and their one-line errors (exit code 2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from b2g_deploy.checkpoint import Checkpoint, save_checkpoint
from b2g_deploy.cli import app
from b2g_deploy.config import preset
from b2g_deploy.export.parity import parity_image
from b2g_deploy.fit import fit
from b2g_deploy.io.images import read_image, write_image

runner = CliRunner()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A tiny fitted RGB checkpoint, its ONNX export, and a folder of noisy images (8 and 16 bit)."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cli")
    noisy = parity_image(3, (72, 100))[0]
    cfg = preset("tiny").with_overrides(iters=15)
    save_checkpoint(root / "m.pt", Checkpoint(fit(torch.from_numpy(noisy), cfg).net, cfg, {"bit_depth": 8}))
    images = root / "images"
    images.mkdir()
    write_image(images / "a.png", noisy, 8)
    write_image(images / "b.png", noisy[:, :60, :90], 16)
    write_image(root / "grey.png", noisy[:1], 8)
    result = runner.invoke(app, ["export", str(root / "m.pt"), "--onnx", str(root / "m.onnx")])
    assert result.exit_code == 0, result.output
    assert "parity: ONNX Runtime CPU vs PyTorch (fp32" in result.output
    return root


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("model", ["m.pt", "m.onnx"])
def test_denoise_image_keeps_bit_depth(work, tmp_path, model):
    out = tmp_path / "b.png"
    result = runner.invoke(app, ["denoise", str(work / "images" / "b.png"), "-m", str(work / model), "-o", str(out)])
    assert result.exit_code == 0, result.output
    img, info = read_image(out)
    assert info.bit_depth == 16 and img.shape == (3, 60, 90)


def test_denoise_folder_batched_and_tiled_agree(work, tmp_path):
    args = ["denoise", str(work / "images"), "-m", str(work / "m.onnx")]
    whole = runner.invoke(app, [*args, "-o", str(tmp_path / "whole"), "--batch", "2"])
    tiled = runner.invoke(app, [*args, "-o", str(tmp_path / "tiled"), "--tile", "48", "--batch", "4"])
    assert whole.exit_code == 0 and tiled.exit_code == 0, whole.output + tiled.output
    assert sorted(p.name for p in (tmp_path / "whole").iterdir()) == ["a.png", "b.png"]
    a, b = read_image(tmp_path / "whole" / "a.png")[0], read_image(tmp_path / "tiled" / "a.png")[0]
    assert np.abs(a - b).mean() < 2 / 255  # tiling agreement: see tests/unit/test_tiling.py


def test_export_ensemble_and_fp16(work, tmp_path):
    out = tmp_path / "e.onnx"
    result = runner.invoke(
        app, ["export", str(work / "m.pt"), "--onnx", str(out), "--mode", "ensemble", "--passes", "2", "--fp16"]
    )
    assert result.exit_code == 0, result.output
    assert "ensemble, 2 pass(es), fp16" in result.output and "PSNR" in result.output


def test_denoise_with_flips_matches_the_exported_flips_model_and_bad_passes_are_refused(work, tmp_path):
    """`denoise --mode flips` on a checkpoint gives what `fit` writes (f(y) over flips/turns), and the
    same as an export with `--mode flips` streamed through ONNX Runtime."""
    onnx = tmp_path / "f.onnx"
    result = runner.invoke(app, ["export", str(work / "m.pt"), "--onnx", str(onnx), "--mode", "flips", "--passes", "8"])
    assert result.exit_code == 0, result.output
    assert "flips, 8 pass(es), fp32" in result.output
    src = work / "images" / "a.png"
    outs = {}
    for name, args in (("pt", ["-m", str(work / "m.pt"), "--mode", "flips"]), ("onnx", ["-m", str(onnx)]),
                       ("single", ["-m", str(work / "m.pt")])):
        result = runner.invoke(app, ["denoise", str(src), *args, "-o", str(tmp_path / f"{name}.png")])
        assert result.exit_code == 0, result.output
        outs[name] = read_image(tmp_path / f"{name}.png")[0]
    assert np.abs(outs["pt"] - outs["onnx"]).max() <= 1.01 / 255  # 8-bit rounding
    assert np.abs(outs["pt"] - outs["single"]).max() > 2 / 255
    line = one_line_error(runner.invoke(app, ["denoise", str(src), "-m", str(work / "m.pt"), "--mode", "flips",
                                              "--passes", "5", "-o", str(tmp_path / "bad.png")]))
    assert "2, 4 or 8" in line and not (tmp_path / "bad.png").exists()


def test_existing_output_without_force(work, tmp_path):
    out = tmp_path / "x.png"
    out.write_bytes(b"keep")
    line = one_line_error(runner.invoke(app, ["denoise", str(work / "images" / "a.png"), "-m", str(work / "m.pt"), "-o", str(out)]))
    assert "--force" in line and out.read_bytes() == b"keep"
    line = one_line_error(runner.invoke(app, ["export", str(work / "m.pt"), "--onnx", str(work / "m.onnx")]))
    assert "--force" in line


def test_bad_models_are_one_line_errors(work, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"junk")
    bad_onnx = tmp_path / "junk.onnx"
    bad_onnx.write_bytes(b"\x08\x07junk")
    engine = tmp_path / "elsewhere.engine"
    engine.write_bytes(b"engine without sidecar")
    img = str(work / "images" / "a.png")
    cases = {
        junk: "not a b2g-deploy checkpoint",
        bad_onnx: "ONNX",
        engine: "sidecar",
    }
    for model, words in cases.items():
        out = tmp_path / f"out_{model.stem}.png"
        line = one_line_error(runner.invoke(app, ["denoise", img, "-m", str(model), "-o", str(out)]))
        assert words in line and not out.exists()
    line = one_line_error(runner.invoke(app, ["export", str(junk), "--onnx", str(tmp_path / "j.onnx")]))
    assert "checkpoint" in line and not (tmp_path / "j.onnx").exists()


def test_other_channel_count_is_refused(work, tmp_path):
    for model in ("m.pt", "m.onnx"):
        out = tmp_path / f"g_{model}.png"
        line = one_line_error(runner.invoke(app, ["denoise", str(work / "grey.png"), "-m", str(work / model), "-o", str(out)]))
        assert "3-channel" in line or "has 1" in line
        assert not out.exists()


def test_export_trt_without_tensorrt(work, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    out = tmp_path / "m.onnx"
    line = one_line_error(runner.invoke(
        app, ["export", str(work / "m.pt"), "--onnx", str(out), "--trt", str(tmp_path / "m.engine")]
    ))
    assert "b2g-deploy[trt]" in line and not out.exists()


def test_bad_profile_shape(work, tmp_path, monkeypatch):
    import sys
    import types

    from b2g_deploy.export import engine_sidecar

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setattr(engine_sidecar, "current_gpu", lambda: ("Fake", "9.0"))
    line = one_line_error(runner.invoke(app, [
        "export", str(work / "m.pt"), "--onnx", str(tmp_path / "m.onnx"), "--trt", str(tmp_path / "m.engine"),
        "--max-shape", "1x3x64",
    ]))
    assert "--max-shape" in line and not (tmp_path / "m.onnx").exists()


def test_info_lists_runtimes():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0
    for word in ("runtimes:", "torch", "onnxruntime", "tensorrt", "ort providers", "CPUExecutionProvider"):
        assert word in result.output
    from b2g_deploy.devices import bf16_is_fast

    # Whether a fit here runs in bf16, as the fit itself decides it.
    assert ("bf16 fits:     yes (cpu)" in result.output) == bf16_is_fast("cpu")


def test_gpu_check_script_parses_and_stops_cleanly_without_cuda():
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: run the script itself")
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3 and "no CUDA GPU" in done.stderr
