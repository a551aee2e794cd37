"""har_core's shape: stage packages that import only downwards, a runtime that stands alone, no ZenML or BentoML."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import har_core
from tests.conftest import PROJECT_ROOT
from tests.layering import imported_modules, layer_order

HAR_CORE = PROJECT_ROOT / "har_core"
# What each part of har_core may import from the others (lazy imports inside functions count too). Top-level
# modules are parts of their own; `runtime` is everything a deployed model needs and stands on nothing else.
ALLOWED: dict[str, set[str]] = {
    "runtime": set(),
    "locations": set(),
    "hub_probe": set(),
    "config": {"runtime"},
    "data": {"runtime", "config", "locations", "hub_probe"},
    "model": {"runtime", "config"},
    "evaluation": {"runtime", "config", "data", "model"},
    "training": {"runtime", "config", "data", "model", "evaluation"},
    "export": {"runtime", "config", "data", "model", "evaluation"},
    "inference": {"runtime", "config"},  # batch inference: a folder's images and videos through one export
    "preflight": {"config", "data", "model", "hub_probe"},
}
STAGE_PACKAGES = {"runtime", "data", "model", "training", "evaluation", "export", "inference"}


def _part(path: Path) -> str:
    relative = path.relative_to(HAR_CORE).parts
    return relative[0] if len(relative) > 1 else relative[0].removesuffix(".py")


def har_core_imports() -> dict[str, set[str]]:
    """part -> the other parts its modules import (every import statement, module level or inside a function)."""
    edges: dict[str, set[str]] = {}
    for path in HAR_CORE.rglob("*.py"):
        source = _part(path)
        if source == "__init__":
            continue
        for name in imported_modules(path):
            parts = name.split(".")
            if parts[0] == "har_core" and len(parts) > 1 and parts[1] != source:
                edges.setdefault(source, set()).add(parts[1])
    return edges


def test_every_part_is_a_known_stage_or_module():
    parts = {_part(path) for path in HAR_CORE.rglob("*.py")} - {"__init__"}
    assert parts == set(ALLOWED), parts ^ set(ALLOWED)
    assert {path.name for path in HAR_CORE.iterdir() if (path / "__init__.py").exists()} >= STAGE_PACKAGES


def test_parts_import_only_what_they_stand_on():
    wrong = {part: sorted(imported - ALLOWED[part]) for part, imported in har_core_imports().items()}
    assert not any(wrong.values()), wrong


def test_the_allowed_imports_have_no_circle():
    assert set(layer_order(ALLOWED)) == set(ALLOWED)


def test_the_layering_check_sees_a_wrong_import(tmp_path, monkeypatch):
    """The AST walk must catch an upward import, also one hidden inside a function."""
    monkeypatch.setattr(sys.modules[__name__], "HAR_CORE", tmp_path)
    (tmp_path / "runtime").mkdir()
    (tmp_path / "runtime" / "bad.py").write_text("def f():\n    from har_core.training.trainer import x\n")
    assert har_core_imports() == {"runtime": {"training"}}


def _all_modules() -> list[str]:
    return sorted(info.name for info in pkgutil.walk_packages(har_core.__path__, "har_core."))


def _run_blocked(blocked: tuple[str, ...], script: str) -> subprocess.CompletedProcess:
    """Run `script` where importing any module named in `blocked` (or below it) raises ImportError."""
    prelude = (
        "import importlib.abc, sys\n"
        "class Blocker(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if any(name == b or name.startswith(b + '.') for b in {blocked!r}):\n"
        "            raise ImportError(f'{name} is blocked in this test')\n"
        "sys.meta_path.insert(0, Blocker())\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + script], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )


def test_har_core_imports_no_zenml_or_bentoml():
    modules = _all_modules()
    assert "har_core.model.classifier" in modules and "har_core.training.trainer" in modules
    result = _run_blocked(
        ("zenml", "bentoml"), f"import importlib\nfor name in {modules!r}: importlib.import_module(name)\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_runtime_stands_without_torch_or_the_training_side():
    """What a deployed model needs imports neither torch nor transformers nor any other part of har_core."""
    runtime = [name for name in _all_modules() if name.startswith("har_core.runtime.")]
    assert {"har_core.runtime.predictor", "har_core.runtime.manifest", "har_core.runtime.preprocess"} <= set(runtime)
    others = tuple(f"har_core.{part}" for part in ALLOWED if part != "runtime")
    script = f"import importlib\nfor name in {runtime!r}: importlib.import_module(name)\n"
    result = _run_blocked(("torch", "transformers", "torchvision", *others), script)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_runtime_check_is_real():
    result = _run_blocked(("har_core.model",), "import har_core.model.serving_graph\n")
    assert result.returncode != 0 and "blocked in this test" in result.stderr


def test_every_predictor_backend_loader_resolves():
    """The formats' loaders are named by string (imported only when served): each must exist."""
    from har_core.runtime.predictor import BACKEND_LOADERS
    from har_core.runtime.settings import ExportFormatName

    assert set(BACKEND_LOADERS) == set(ExportFormatName.__args__)
    for target in BACKEND_LOADERS.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), target


def test_the_pre_run_data_check_imports_no_torch():
    """run.py scans local data before any heavy import, so a data problem is reported in a second or two."""
    result = _run_blocked(
        ("torch", "transformers", "zenml", "mlflow"), "import har_core.data.scan, har_zenml.run_config\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_torchrun_workers_import_no_experiment_tracker():
    """Tracker runs belong to the step's process: workers hand metrics back as a file, never log themselves."""
    script = "import har_core.training.worker, har_core.training.launcher\n"
    result = _run_blocked(("zenml", "mlflow", "wandb"), script)
    assert result.returncode == 0, result.stderr[-2000:]
