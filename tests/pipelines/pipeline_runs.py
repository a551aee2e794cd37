"""Helpers for tests that run the real training pipeline on a deliberately tiny config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from tests.conftest import PROJECT_ROOT

TINY_LABELS = ["calling", "clapping", "cycling"]


def tiny_config(directory: Path, name: str = "tiny.yaml", **data: Any) -> Path:
    """configs/quickstart.yaml cut to 3 labels, 6 small images each, 1 epoch, the onnx export alone (gated on 16
    images) and a short benchmark; `data` overrides `data:` keys. Tests of the exports set `export.formats`."""
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    parameters = config["parameters"]
    parameters["data"] = {
        "source": "synthetic",
        "labels": TINY_LABELS,
        "synthetic": {"images_per_class": 6, "image_size": 32, "seed": 0},
        "split": {"train": 0.5, "val": 0.25, "test": 0.25, "seed": 0},
        "cache_dir": str(directory / "data"),
        **data,
    }
    parameters["classifier"]["cache_dir"] = str(directory / "backbones")
    parameters["training"].update(epochs=1, batch_size=8, output_dir=str(directory / "checkpoints"))
    parameters["export"].update(formats=["onnx"], parity_images=16)
    parameters["benchmark"].update(batch_size=2, warmup=1, latency_iterations=2, throughput_iterations=1)
    path = directory / name
    path.write_text(yaml.safe_dump(config))
    return path


def run_training(zenml_client, config: Path, *args: str):
    """Run the training pipeline through run.py; returns the new run (refreshed) and the CLI output."""
    import run

    result = CliRunner().invoke(run.main, ["--pipeline", "training", "--config", str(config), *args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return zenml_client.get_pipeline("training_pipeline").last_run, result.output


def step_statuses(pipeline_run) -> dict[str, str]:
    """Status per step, leaving out promote_model: it runs on every run by design (production may have changed)."""
    from har_zenml.names import PROMOTE_STEP

    return {name: step.status.value for name, step in pipeline_run.steps.items() if name != PROMOTE_STEP}
