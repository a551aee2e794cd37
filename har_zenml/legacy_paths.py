"""Old import paths of this project's modules, so artifacts saved before a module moved still load.

ZenML records every artifact's type and materializer by import path (e.g. `har_core.export_manifest.ExportBundle`,
`steps.materializers.HarClipClassifierMaterializer`) and imports them when the artifact is loaded: promotion re-scores
production and rollback redeploys old versions from a user's existing store. `install()` puts `LegacyPathFinder` on
`sys.meta_path`, which answers an old module path with the module that now holds its contents, and gives the four
stage packages that share their name with an old module (`har_core.model`, `.training`, `.evaluation`, `.export`)
a module `__getattr__` that hands the old names on.

This is the ZenML side's business: `har_core` neither imports nor ships it. Importing `har_zenml` or `steps` installs
it (ZenML imports an artifact's materializer, ours under either path, before its type); a notebook loading old
artifacts with ZenML's own materializers (pydantic records such as the evaluation report) runs `import har_zenml` first.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType
from typing import Any

MOVED_MODULES: dict[str, str] = {
    "har_core.images": "har_core.runtime.images",
    "har_core.transform": "har_core.runtime.preprocess",  # `augment` is in har_core.data.augment
    "har_core.labels": "har_core.runtime.labels",
    "har_core.model_card": "har_core.runtime.model_card",
    "har_core.export_manifest": "har_core.runtime.manifest",
    "har_core.predictor": "har_core.runtime.predictor",
    "har_core.text_encoder": "har_core.runtime.text_encoder",
    "har_core.tensorrt_engine": "har_core.runtime.tensorrt_engine",
    "har_core.parity": "har_core.runtime.parity",
    "har_core.hashing": "har_core.runtime.hashing",
    "har_core.dataset": "har_core.data.dataset",
    "har_core.dataset_archive": "har_core.data.archive",
    "har_core.data_check": "har_core.data.scan",
    "har_core.sources": "har_core.data.sources",
    "har_core.split": "har_core.data.split",
    "har_core.synthetic": "har_core.data.synthetic",
    "har_core.dvc_data": "har_core.data.dvc",
    "har_core.prepare": "har_core.data.prepare",
    "har_core.hub": "har_core.hub_probe",
    "har_core.backbone": "har_core.model.backbone",
    "har_core.device": "har_core.training.precision",
    "har_core.distributed": "har_core.training.distributed",
    "har_core.checkpoint": "har_core.training.checkpoint",
    "har_core.launch": "har_core.training.launcher",
    "har_core.worker": "har_core.training.worker",
    "har_core.job": "har_core.training.job",
    "har_core.process_tree": "har_core.training.process_tree",
    "har_core.plots": "har_core.evaluation.plots",
    "har_core.promotion": "har_core.evaluation.promotion",
    "har_core.exporter": "har_core.export.bundle",
    "har_core.benchmark": "har_core.export.benchmark",
    "har_core.publish": "har_core.export.publish",
    "har_core.constants": "har_zenml.names",  # step and artifact names belong to the pipelines' side now
    "har_core.deployment": "har_zenml.deployment_plan",
    # Modules of har_core renamed by the "one name, one meaning" pass.
    "har_core.model.device": "har_core.training.precision",
    "har_core.training.provenance": "har_core.training.run_facts",
    # The ZenML-side library that lived in steps/ (materializers and plan types are recorded in stored artifacts).
    **{
        f"steps.{name}": f"har_zenml.{name}"
        for name in (
            "names",
            "materializers",
            "tracking",
            "model_exports",
            "deployment_plan",
            "inference_plan",
            "inference_inputs",
            "project_paths",
            "multinode_node",
        )
    },
    "steps.provenance": "har_zenml.model_provenance",
}
# Old modules whose name is now a stage package: their old contents live in one module of that package.
RENAMED_TO_PACKAGE: dict[str, str] = {
    "har_core.model": "har_core.model.classifier",
    "har_core.training": "har_core.training.trainer",
    "har_core.evaluation": "har_core.evaluation.metrics",
    "har_core.export": "har_core.export.graphs",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module that replaced it (the same module object, so types compare equal)."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Already executed under its new name."""


class LegacyPathFinder(importlib.abc.MetaPathFinder):
    """Finds the old module paths of `MOVED_MODULES`."""

    def find_spec(self, fullname: str, path: Any = None, target: ModuleType | None = None):
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(MOVED_MODULES[fullname]))


def install() -> None:
    """Put the finder on `sys.meta_path` once (after the normal finders: real modules always win), and the old
    names on the stage packages that replaced an old module of the same name."""
    if not any(isinstance(finder, LegacyPathFinder) for finder in sys.meta_path):
        sys.meta_path.append(LegacyPathFinder())
    for package in RENAMED_TO_PACKAGE:
        module = importlib.import_module(package)  # a stage package's __init__: a docstring, nothing imported
        if "__getattr__" not in vars(module):
            module.__getattr__ = functools.partial(moved_attribute, package)


def moved_attribute(package: str, name: str) -> Any:
    """`package.name` for a stage package that replaced an old module of the same name (its module `__getattr__`)."""
    if name.startswith("_") or importlib.util.find_spec(f"{package}.{name}") is not None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    try:
        return getattr(importlib.import_module(RENAMED_TO_PACKAGE[package]), name)
    except AttributeError:
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
