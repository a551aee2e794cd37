"""The exporter table: one exporter per format, each writing from the serving module the export builds once."""

from __future__ import annotations

from typing import get_args

import numpy as np

from har_core.export import bundle as bundle_module
from har_core.export.formats import EXPORTERS
from har_core.model import serving_graph
from har_core.runtime.manifest import MODEL_ROLE, ModelSource
from har_core.runtime.predictor import BACKEND_LOADERS
from har_core.runtime.settings import ExportFormatName
from tests.conftest import random_init_export_config


def test_every_format_has_an_exporter_and_a_loader():
    formats = set(get_args(ExportFormatName))
    assert set(EXPORTERS) == formats == set(BACKEND_LOADERS)


def test_an_export_builds_the_serving_modules_once_for_all_its_formats(
    tiny_model, parity_pixels, tmp_path, monkeypatch
):
    built: list[str] = []  # modules built from the exported classifier (the PyTorch format's gate loads its own)

    class CountedImageModel(serving_graph.ImageModel):
        def __init__(self, classifier) -> None:
            built.extend(["image"] if classifier is tiny_model else [])
            super().__init__(classifier)

    class CountedTextModel(serving_graph.TextModel):
        def __init__(self, classifier) -> None:
            built.extend(["text"] if classifier is tiny_model else [])
            super().__init__(classifier)

    monkeypatch.setattr(serving_graph, "ImageModel", CountedImageModel)
    monkeypatch.setattr(serving_graph, "TextModel", CountedTextModel)
    formats = ("pytorch", "torchscript", "onnx")
    config = random_init_export_config(formats=formats, onnx_graph="standard", parity_images=4, serving_parity_images=2)
    exports = bundle_module.export_bundle(
        tiny_model, parity_pixels[:4], tmp_path, config, ModelSource(backbone="tiny"), device="cpu"
    )
    assert sorted(built) == ["image", "text"]
    assert sorted(exports.deployable_formats()) == sorted(formats)
    logit_scales = {exports.manifest(name).logit_scale for name in formats}
    assert len(logit_scales) == 1 and np.isclose(logit_scales.pop(), float(tiny_model.logit_scale()))
    for name in formats:
        manifest = exports.manifest(name)
        manifest.verify_files(exports.directory(name))
        assert manifest.path(exports.directory(name), MODEL_ROLE).is_file()
