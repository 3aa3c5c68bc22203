"""Import layering: cli -> api -> {fit, export, runtimes, io} -> {modelfile, model, config,
checkpoint, errors}; the api never imports the CLI (nor typer or rich). Export and the runtimes share what a model file is through ``modelfile``
and never import each other; io never imports a runtime.

Each layer is imported in a fresh interpreter, one module after another; after each import the
test records which forbidden modules appeared, so a failure names the module that pulled them
in. (Importing a layer's modules together loads exactly the union of what each loads alone, so
one interpreter per layer gives the per-module verdict at a fraction of the start-up cost.)
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "b2g_deploy"

UPPER = ["b2g_deploy.cli", "b2g_deploy.api"]
# (modules, forbidden module prefixes)
LAYERS = {
    "modelfile": (["modelfile"], ["export", "runtimes", "io", "fit", *UPPER]),
    "export": (["export"], ["runtimes", "fit", *UPPER]),
    "runtimes": (["runtimes"], ["export", "fit", *UPPER]),
    "io": (["io"], ["runtimes", "export", "fit", *UPPER]),
    "fit": (["fit"], ["export", "runtimes", *UPPER]),
    "model+config": (["model", "config", "errors", "devices", "metrics"],
                     ["fit", "export", "runtimes", "io", "modelfile", *UPPER]),
    # checkpoint writes through io.atomic (a leaf: it imports only errors).
    "checkpoint": (["checkpoint"], ["fit", "export", "runtimes", "modelfile", *UPPER]),
    # The library API sits under the CLI only: Python users and benchmarks call it without typer.
    "api": (["api"], ["b2g_deploy.cli", "typer", "rich"]),
    # serving sits beside api: the server process (export's Triton naming, the ONNX runtime) and
    # its launcher; it runs in an environment without torch, typer or cv2.
    "serving": (["serving"], ["fit", "io", "model", "checkpoint", *UPPER]),
}
# Optional or heavy packages are imported inside the functions that need them.
HEAVY = ["onnxruntime", "tensorrt", "cv2", "pytriton", "tritonclient"]

SCRIPT = """
import importlib, json, sys
forbidden = json.loads(sys.argv[1])
found = {}
for name in sys.argv[2:]:
    importlib.import_module(name)
    bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in forbidden))
    new = [m for m in bad if not any(m in v for v in found.values())]
    if new:
        found[name] = new
print(json.dumps(found))
"""


def modules_of(part: str) -> list[str]:
    """``b2g_deploy.<part>`` and, for a package, every module in it (from the files, unimported)."""
    path = PKG / part
    if path.is_dir():
        return [f"b2g_deploy.{part}"] + sorted(
            f"b2g_deploy.{part}.{f.stem}" for f in path.glob("*.py") if f.stem != "__init__"
        )
    return [f"b2g_deploy.{part}"]


def forbidden_imports(modules: list[str], forbidden: list[str]) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(forbidden), *modules],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_layer_imports_nothing_above_or_beside_it(layer):
    parts, banned = LAYERS[layer]
    modules = [m for part in parts for m in modules_of(part)]
    forbidden = [b if b.startswith("b2g_deploy.") or b in ("typer", "rich") else f"b2g_deploy.{b}"
                 for b in banned] + HEAVY
    assert forbidden_imports(modules, forbidden) == {}


def within(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def imported_names(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside functions, as absolute names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from .. import fit`
    return names


@pytest.mark.parametrize("layer", ["modelfile", "export", "runtimes", "io", "api", "serving"])
def test_no_lazy_import_crosses_the_layers_either(layer):
    """Imports inside functions do not show in sys.modules until called: read the source."""
    parts, banned = LAYERS[layer]
    forbidden = [b if b.startswith("b2g_deploy.") or b in ("typer", "rich") else f"b2g_deploy.{b}"
                 for b in banned]
    crossing = {}
    for part in parts:
        for f in sorted((PKG / part).glob("*.py")):
            bad = sorted(n for n in imported_names(f) if within(n, forbidden))
            if bad:
                crossing[f"{part}/{f.name}"] = bad
    assert crossing == {}


def test_the_rule_is_checked_at_all():
    """The checker itself: a forbidden import is caught and named after the module that made it."""
    modules = ["b2g_deploy.errors", "b2g_deploy.cli.export_cmd", "b2g_deploy.export.onnx_export"]
    found = forbidden_imports(modules, ["b2g_deploy.export"])
    assert list(found) == ["b2g_deploy.export.onnx_export"]


def test_exported_masks_are_the_fit_masks():
    """modelfile.graph draws its fixed masks itself (it may not import fit); they must stay the
    masks ``fit.masks.sample_mask`` gives for the same seed, or exported ensembles would change."""
    from b2g_deploy.fit.masks import sample_mask
    from b2g_deploy.modelfile.graph import fixed_masks

    for passes, rate, seed in [(8, 0.2, 0), (3, 0.5, 7), (1, 0.05, 123)]:
        gen = torch.Generator().manual_seed(seed)
        expected = sample_mask(torch.full((passes, 1, 128, 128), rate), gen)
        assert torch.equal(fixed_masks(passes, rate, seed), expected)


def test_old_import_paths_still_work():
    from b2g_deploy.export import engine_sidecar, graph, metadata
    from b2g_deploy.export.tensorrt_build import import_tensorrt
    from b2g_deploy.modelfile import engine_sidecar as low_sidecar
    from b2g_deploy.modelfile import onnx_metadata
    from b2g_deploy.modelfile.info import ModelInfo
    from b2g_deploy.modelfile.optional import import_tensorrt as low_import
    from b2g_deploy.runtimes import ModelInfo as PublicModelInfo
    from b2g_deploy.runtimes.base import ModelInfo as BaseModelInfo

    assert ModelInfo is PublicModelInfo is BaseModelInfo
    assert metadata.ExportMetadata is onnx_metadata.ExportMetadata
    assert engine_sidecar.EngineSidecar is low_sidecar.EngineSidecar
    assert import_tensorrt is low_import and callable(graph.build_module)
