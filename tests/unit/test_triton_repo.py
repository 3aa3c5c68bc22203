"""Triton model repository: config.pbtxt parsed with Triton's own schema (tritonclient's
model_config_pb2.ModelConfig), atomic and non-destructive writes, and the CLI's one-line errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from b2g_deploy.cli import app
from b2g_deploy.errors import InputError, OutputExistsError
from b2g_deploy.export import triton_repo
from b2g_deploy.export.triton_repo import check_triton_target, preferred_batch_sizes, write_triton_repo

runner = CliRunner()
PROPS = {"b2g.format": "b2g-deploy/onnx", "b2g.channels": "3", "b2g.mode": "single",
         "b2g.preset": 'odd "name"\\ é\n', "other.key": "kept"}


def model_config_pb2():
    """Triton's model-configuration schema, or a clean skip without tritonclient."""
    try:
        from tritonclient.grpc import model_config_pb2 as pb2
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.skip(f"tritonclient[grpc] is not installed ({exc}): pip install 'tritonclient[grpc]'")
    return pb2


def parse_config(path):
    from google.protobuf import text_format

    pb2 = model_config_pb2()
    return pb2, text_format.Parse(path.read_text(encoding="utf-8"), pb2.ModelConfig())


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """A tiny Identity graph shaped like our exports: input/output (batch, 3, height, width) float32,
    with b2g metadata (one value needing escapes) and one foreign key."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    shape = ["batch", 3, "height", "width"]
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    for key, value in PROPS.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = tmp_path_factory.mktemp("onnx") / "m.onnx"
    onnx.save(model, str(path))
    return path


def test_config_matches_tritons_schema(onnx_file, tmp_path):
    repo = tmp_path / "repo"
    model = write_triton_repo(onnx_file, repo, name="den.oise-1", version=3, max_batch=6,
                              instance_kind="KIND_CPU", queue_delay_us=250)
    assert model.config == repo / "den.oise-1" / "config.pbtxt"
    assert (repo / "den.oise-1" / "3" / "model.onnx").read_bytes() == onnx_file.read_bytes()
    pb2, cfg = parse_config(model.config)
    assert cfg.name == "den.oise-1" and cfg.platform == "onnxruntime_onnx" and cfg.max_batch_size == 6
    tensors = [(t.name, t.data_type, list(t.dims)) for t in [*cfg.input, *cfg.output]]
    assert tensors == [("input", pb2.TYPE_FP32, [3, -1, -1]), ("output", pb2.TYPE_FP32, [3, -1, -1])]
    assert cfg.HasField("dynamic_batching")
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4, 6]
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 250
    assert [(g.count, g.kind) for g in cfg.instance_group] == [(1, pb2.ModelInstanceGroup.KIND_CPU)]
    assert {k: v.string_value for k, v in cfg.parameters.items()} == PROPS


def test_gpu_kind_and_plan(onnx_file, tmp_path):
    plan = tmp_path / "m.engine"
    plan.write_bytes(b"not really an engine")
    model = write_triton_repo(onnx_file, tmp_path / "repo", plan=plan, max_batch=1, instance_kind="KIND_GPU")
    assert model.model_file == tmp_path / "repo" / "b2g_denoiser" / "1" / "model.plan"
    assert model.model_file.read_bytes() == plan.read_bytes()
    assert not (model.model_file.parent / "model.onnx").exists()
    pb2, cfg = parse_config(model.config)
    assert cfg.platform == "tensorrt_plan" and cfg.max_batch_size == 1
    assert list(cfg.dynamic_batching.preferred_batch_size) == [1]
    assert cfg.instance_group[0].kind == pb2.ModelInstanceGroup.KIND_GPU


def test_default_instance_kind_follows_cuda(onnx_file, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert write_triton_repo(onnx_file, tmp_path / "a").instance_kind == "KIND_GPU"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert write_triton_repo(onnx_file, tmp_path / "b").instance_kind == "KIND_CPU"


def test_preferred_batch_sizes():
    assert preferred_batch_sizes(1) == [1]
    assert preferred_batch_sizes(2) == [2]
    assert preferred_batch_sizes(8) == [2, 4, 8]
    assert preferred_batch_sizes(12) == [2, 4, 8, 12]


@pytest.mark.parametrize("name", ["", ".hidden", "..", "a/b", "a b", "mödel", "a:b"])
def test_bad_model_names(tmp_path, name):
    with pytest.raises(InputError, match="model name"):
        check_triton_target(tmp_path / "repo", name=name)


@pytest.mark.parametrize("version", [0, -1])
def test_bad_version(tmp_path, version):
    with pytest.raises(InputError, match="version"):
        check_triton_target(tmp_path / "repo", version=version)


def test_existing_repo_needs_force_and_keeps_other_content(onnx_file, tmp_path):
    repo = tmp_path / "repo"
    write_triton_repo(onnx_file, repo, name="m", version=1)
    (repo / "other").mkdir()
    (repo / "other" / "config.pbtxt").write_text("name: \"other\"\n")
    (repo / "m" / "1" / "notes.txt").write_text("v1")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(OutputExistsError, match="--force"):
        write_triton_repo(onnx_file, repo, name="m", version=2)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    write_triton_repo(onnx_file, repo, name="m", version=2, force=True, max_batch=4)
    assert (repo / "other" / "config.pbtxt").read_text() == "name: \"other\"\n"
    assert (repo / "m" / "1" / "notes.txt").read_text() == "v1"  # the other version kept
    assert (repo / "m" / "1" / "model.onnx").exists() and (repo / "m" / "2" / "model.onnx").exists()
    assert parse_config(repo / "m" / "config.pbtxt")[1].max_batch_size == 4
    # Replacing a version replaces that version's folder only
    write_triton_repo(onnx_file, repo, name="m", version=1, force=True)
    assert not (repo / "m" / "1" / "notes.txt").exists() and (repo / "m" / "2" / "model.onnx").exists()
    write_triton_repo(onnx_file, repo, name="new", version=1, force=True)
    assert sorted(p.name for p in repo.iterdir()) == ["m", "new", "other"]  # no temporary folders left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]


def test_repo_that_is_a_file_or_without_parent(onnx_file, tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        write_triton_repo(onnx_file, tmp_path / "file", force=True)
    with pytest.raises(InputError, match="does not exist"):
        write_triton_repo(onnx_file, tmp_path / "missing" / "repo")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "b2g_denoiser").write_text("a file where the model folder would go")
    with pytest.raises(InputError, match="not a model folder"):
        write_triton_repo(onnx_file, repo, force=True)
    assert (repo / "b2g_denoiser").read_text().startswith("a file")


def test_failed_write_leaves_nothing(onnx_file, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(triton_repo.shutil, "copyfile", broken)
    with pytest.raises(OSError, match="disk full"):
        write_triton_repo(onnx_file, tmp_path / "repo")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    repo = tmp_path / "repo"
    write_triton_repo(onnx_file, repo, name="m")
    old = (repo / "m" / "config.pbtxt").read_text()
    monkeypatch.setattr(triton_repo.shutil, "copyfile", broken)
    with pytest.raises(OSError, match="disk full"):
        write_triton_repo(onnx_file, repo, name="m", max_batch=2, force=True)
    assert (repo / "m" / "config.pbtxt").read_text() == old
    assert sorted(p.name for p in repo.iterdir()) == ["m"]


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.mark.parametrize("extra, message", [
    (["--name", ".hidden"], "bad Triton model name '.hidden'"),
    (["--name", "a/b"], "bad Triton model name 'a/b'"),
    (["--version", "0"], "version must be an integer >= 1"),
    (["--max-batch", "0"], "--max-batch must be an integer >= 1"),
])
def test_cli_bad_input(tmp_path, extra, message):
    # The checks run before the checkpoint is read: it does not even have to exist.
    args = ["export", str(tmp_path / "m.pt"), "--triton", str(tmp_path / "repo"), *extra]
    result = runner.invoke(app, args)
    assert message in one_line_error(result)
    assert list(tmp_path.iterdir()) == []


def test_cli_existing_repo_and_no_output(tmp_path):
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["export", str(tmp_path / "m.pt"), "--triton", str(tmp_path / "repo")])
    assert "exists; pass --force" in one_line_error(result)
    assert (tmp_path / "repo" / "keep.txt").read_text() == "mine"
    result = runner.invoke(app, ["export", str(tmp_path / "m.pt")])
    assert "give --onnx OUT.onnx, --triton REPO, or both" in one_line_error(result)
