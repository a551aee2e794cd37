"""ONE tiny training run (train, evaluate, export, benchmark, promote) in the session's clean ZenML store, shared by
the viewer's AppTest and browser tests."""

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
    # One format, a small parity set and a short benchmark; promotion keeps its defaults (this model stays below
    # the accuracy floor, so it is staged, and has mistakes to show).
    parameters["export"].update(formats=["onnx"], parity_images=16, output_dir=str(directory / "exports"))
    parameters["benchmark"].update(batch_size=2, warmup=1, latency_iterations=2, throughput_iterations=1)
    path = directory / "viewer-tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="session")
def viewer_run(zenml_client, tmp_path_factory):
    """(the tiny run, its model version); read-only: tests must not add runs."""
    from click.testing import CliRunner

    import run as run_cli

    directory = tmp_path_factory.mktemp("viewer-run")
    result = CliRunner().invoke(
        run_cli.main, ["--pipeline", "training", "--config", str(tiny_run_config(directory)), "--no-cache"]
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = zenml_client.get_pipeline("training_pipeline").last_run
    version = zenml_client.get_model_version(run.model_version.model.name, run.model_version.number)
    return run, version
