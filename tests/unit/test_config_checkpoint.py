from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from b2g_deploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from b2g_deploy.config import PRESETS, FitConfig, apply_changes, load_changes, preset
from b2g_deploy.errors import CheckpointError, InputError, OutputExistsError
from b2g_deploy.model import B2GNet


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError, match="extra"):
        FitConfig.model_validate({"itres": 10})
    with pytest.raises(ValidationError):
        FitConfig.model_validate({"mask": {"rate": 1.5}})
    with pytest.raises(ValidationError):
        preset("fast").with_overrides(iters=0)


def test_config_changes_merge_key_by_key(tmp_path):
    fast = preset("scratch")  # the B2G recipe: has the dropout and distillation it changes
    cfg = apply_changes(fast, {"loss": {"omega": 0.0}, "mask": {"kind": "bernoulli"}, "iters": 7})
    assert (cfg.loss.omega, cfg.mask.kind, cfg.iters) == (0.0, "bernoulli", 7)
    assert cfg.loss.distill_weight == fast.loss.distill_weight  # the rest of [loss] is kept
    assert cfg.mask.cycle == fast.mask.cycle and cfg.model == fast.model

    toml = tmp_path / "c.toml"
    toml.write_text('iters = 9\n[model]\ndropout = "none"\n')
    assert apply_changes(fast, load_changes(toml)).model.dropout == "none"
    js = tmp_path / "c.json"
    js.write_text('{"lr": 0.001}')
    assert apply_changes(fast, load_changes(js)).lr == 0.001
    assert apply_changes(fast, load_changes(Path('{"lr": 0.002, "loss": {"omega": 0.0}}'))).lr == 0.002


def test_inline_config_that_is_not_json_is_one_line_user_error():
    with pytest.raises(InputError, match="neither a file nor valid inline JSON") as info:
        load_changes(Path('{"lr": 2e-4,}'))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, message",
    [
        ('[loss]\nomegaa = 0.0\n', "loss.omegaa: Extra inputs are not permitted"),
        ('[mask]\nrate = 2.0\n', "mask.rate: Input should be less than 1"),
        ('iters = "many"\n', "iters: Input should be a valid integer"),
        ("iters = \n", "is not valid TOML"),
    ],
)
def test_bad_config_files_are_one_line_user_errors(tmp_path, text, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as info:
        apply_changes(preset("fast"), load_changes(path), source=str(path))
    assert "\n" not in str(info.value)


def test_config_file_must_exist_and_hold_a_mapping(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_changes(tmp_path / "missing.toml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="table/object"):
        load_changes(tmp_path / "list.json")


def test_paper_preset_matches_the_paper():
    cfg = PRESETS["paper"]
    assert (cfg.model.width, cfg.mask.rate, cfg.loss.omega, cfg.loss.gamma) == (48, 0.25, 0.8, 0.5)
    assert (cfg.ensemble_passes, cfg.lr, cfg.model.dropout, cfg.mask.kind) == (40, 2e-5, "tstandout", "dual")


def test_unknown_preset_is_a_user_error():
    with pytest.raises(InputError, match="unknown preset"):
        preset("quick")


def _ckpt(channels=3):
    cfg = preset("tiny")
    return Checkpoint(B2GNet(channels, cfg.model), cfg, {"bit_depth": 16, "history": [{"step": 1, "loss": 0.5}]})


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    path = tmp_path / "c.pt"
    ck = _ckpt()
    save_checkpoint(path, ck)
    raw = torch.load(path, weights_only=True)  # the file itself is weights-only loadable
    assert raw["meta"]["channels"] == 3 and raw["meta"]["package_version"]
    back = load_checkpoint(path, channels=3)
    assert back.config == ck.config and back.meta["bit_depth"] == 16
    x = torch.rand(1, 3, 16, 16)
    ck.net.eval()
    assert torch.equal(back.net(x), ck.net(x))


def test_checkpoint_refuses_overwrite_and_other_channel_counts(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, _ckpt(1))
    with pytest.raises(OutputExistsError):
        save_checkpoint(path, _ckpt(1))
    save_checkpoint(path, _ckpt(1), force=True)
    with pytest.raises(CheckpointError, match="1-channel"):
        load_checkpoint(path, channels=3)


class NotOurs:
    """Any pickled object: weights_only loading must refuse to build it."""


def test_foreign_and_corrupt_files_are_refused(tmp_path):
    pickled = tmp_path / "evil.pt"
    torch.save({"obj": NotOurs()}, pickled)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    truncated = tmp_path / "trunc.pt"
    save_checkpoint(truncated, _ckpt())
    truncated.write_bytes(truncated.read_bytes()[:200])
    for path in (pickled, other, junk, truncated, tmp_path / "missing.pt"):
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
    assert not list(tmp_path.glob(".*part*"))
