"""ONE tiny training run in the session's clean ZenML store, shared by the viewer's AppTest and browser tests.

Until the training pipeline has its own export and promotion steps, `ensure_export_and_stage` does what they will
do for this run (an ONNX export linked to its model version as `EXPORTS_ARTIFACT`, stage production); once the
pipeline does it, the helper finds both already there and changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

TINY_BACKBONE = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_layers": 1, "num_heads": 2}


def tiny_run_config(directory: Path) -> Path:
    """configs/quickstart.yaml shrunk to seconds: 8 synthetic images per class, a one-layer CLIP, 2 epochs."""
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    parameters = config["parameters"]
    parameters["data"]["synthetic"] = {"images_per_class": 8, "image_size": 48, "seed": 0}
    parameters["data"]["cache_dir"] = str(directory / "data")
    parameters["classifier"]["tiny_backbone"] = {**TINY_BACKBONE, "projection_dim": 32, "seed": 0}
    parameters["classifier"]["cache_dir"] = str(directory / "backbones")
    parameters["training"].update(epochs=2, output_dir=str(directory / "checkpoints"))
    path = directory / "viewer-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def ensure_export_and_stage(run, directory: Path):
    """The run's model version with an ONNX export (`EXPORTS_ARTIFACT`) and a stage; returns the version."""
    from zenml import save_artifact
    from zenml.client import Client
    from zenml.model.utils import link_artifact_version_to_model_version

    from har_core.config import ExportConfig
    from har_core.constants import DATASET_ARTIFACT, EXPORTS_ARTIFACT, PRODUCTION_STAGE, TRAINED_MODEL_ARTIFACT
    from har_core.dataset import load_image
    from har_core.export_manifest import ModelSource
    from har_core.exporter import export_bundle
    from har_core.transform import preprocess_batch

    version = run.model_version
    if version.get_artifact(EXPORTS_ARTIFACT) is None:
        model = run.steps["train_model"].outputs[TRAINED_MODEL_ARTIFACT][0].load()
        manifest = run.steps["load_data"].outputs[DATASET_ARTIFACT][0].load()
        pixels = preprocess_batch([load_image(r.path) for r in manifest.val[:16]], model.preprocess_config)
        source = ModelSource(
            model_name=version.model.name,
            model_version=str(version.number),
            pipeline_run=run.name,
            backbone=model.backbone_name,
        )
        bundle = export_bundle(model, pixels, directory / "exports", ExportConfig(formats=("onnx",)), source, "cpu")
        assert bundle.deployable_formats() == ["onnx"], bundle.formats
        link_artifact_version_to_model_version(save_artifact(bundle, EXPORTS_ARTIFACT), version)
    if version.stage is None:
        version.set_stage(PRODUCTION_STAGE)
    return Client().get_model_version(version.model.name, version.number)


@pytest.fixture(scope="session")
def viewer_run(zenml_client, tmp_path_factory):
    """The tiny run, its model version exported and in production (read-only: tests must not add runs)."""
    from click.testing import CliRunner

    import run as run_cli

    directory = tmp_path_factory.mktemp("viewer-run")
    result = CliRunner().invoke(
        run_cli.main, ["--pipeline", "training", "--config", str(tiny_run_config(directory)), "--no-cache"]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = zenml_client.get_pipeline("training_pipeline").last_run
    version = ensure_export_and_stage(run, directory)
    return zenml_client.get_pipeline_run(run.id), version
