"""`run.py --pipeline inference` end to end in the session's store, on the session's tiny training run's version."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from zenml.io import fileio

from har_core.inference.table import PredictionsTable
from har_zenml.names import INFERENCE_PLAN_ARTIFACT, PREDICT_FILES_STEP, PREDICTIONS_ARTIFACT
from tests.conftest import PROJECT_ROOT
from tests.videos import encode_video, first_image, two_label_frames

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def incoming(tmp_path_factory, synthetic_root) -> Path:
    """24 images of 3 labels, a two-label video and an unreadable file."""
    root = tmp_path_factory.mktemp("incoming")
    for label in ("calling", "running", "texting"):
        (root / label).mkdir()
        for path in sorted((synthetic_root / label).glob("*.jpg")):
            shutil.copy(path, root / label / path.name)
    frames = two_label_frames(
        first_image(synthetic_root, "calling"), first_image(synthetic_root, "texting"), 10, 3.0, 1.5
    )
    (root / "clip.mp4").write_bytes(encode_video(frames, 10, "mpeg4"))
    (root / "running" / "torn.png").write_bytes(b"\x89PNG\r\n\x1a\n torn")
    return root


def write_config(directory: Path, version: int, incoming: Path, **inference) -> Path:
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "inference.yaml").read_text())
    config["parameters"]["inference"].update(
        model_version=version, input={"source": "folder", "path": str(incoming)}, output_dir=str(directory), **inference
    )
    path = directory / "inference.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_inference(config: Path):
    import run

    return CliRunner().invoke(run.main, ["--pipeline", "inference", "--config", str(config)])


def test_a_folder_is_scored_into_a_parquet_artifact_and_a_csv(zenml_client, tiny_training_run, incoming, tmp_path):
    _, version = tiny_training_run
    result = run_inference(write_config(tmp_path, version.number, incoming, top_k=2))
    assert result.exit_code == 0, result.output + repr(result.exception)
    print(result.output[-2500:])
    run = zenml_client.get_pipeline("inference_pipeline").last_run
    assert run.status.value == "completed"
    plan = run.steps["select_inference_model"].outputs[INFERENCE_PLAN_ARTIFACT][0].load()
    assert (plan.model_version, plan.format) == (str(version.number), "onnx")
    assert "fastest format" in plan.reason or "first gated format" in plan.reason  # never deployed

    artifact = run.steps[PREDICT_FILES_STEP].outputs[PREDICTIONS_ARTIFACT][0]
    stored = artifact.load()  # parquet parts in the artifact store, read back through its filesystem
    assert isinstance(stored, PredictionsTable) and stored.directory == artifact.uri and stored.rows == 30
    assert sorted(path.name for path in Path(artifact.uri).iterdir()) == sorted(["table.json", *stored.parts])
    table = stored.to_frame(opener=fileio.open)
    assert isinstance(table, pd.DataFrame) and len(table) == 24 + 6
    assert list(table.columns[-2:]) == ["model_version", "format"] and "label_2" in table and "label_3" not in table
    assert table[table["kind"] == "video"]["time_s"].tolist() == pytest.approx([0, 0.5, 1.0, 1.5, 2.0, 2.5])

    csv = tmp_path / f"{run.name}.csv"
    assert pd.read_csv(csv)["file"].tolist() == table["file"].tolist()
    assert f"24 images and 6 frames of 1 video(s) from folder '{incoming}'" in result.output
    assert "img/s in the scoring step" in result.output and "ZenML start-up" in result.output
    assert "1 unreadable file(s), skipped (on_error: skip):" in result.output
    assert "running/torn.png: not a readable image" in result.output and f"CSV: {csv}" in result.output
    counts = artifact.run_metadata["label_counts"]
    assert sum(counts.values()) == 30 and list(counts)[0] in result.output


def test_on_error_fail_stops_the_run_naming_the_file(tiny_training_run, incoming, tmp_path):
    _, version = tiny_training_run
    result = run_inference(write_config(tmp_path, version.number, incoming, on_error="fail"))
    assert result.exit_code == 1 and "running/torn.png" in result.output and "on_error: fail" in result.output


def test_config_mistakes_are_reported_before_any_run(tmp_path, incoming):
    config = write_config(tmp_path, 1, incoming, batch_sise=4)
    result = run_inference(config)
    assert result.exit_code == 1 and "parameters.inference.batch_sise: Extra inputs are not permitted" in result.output
    missing = run_inference(write_config(tmp_path, 1, tmp_path / "absent"))
    assert missing.exit_code == 1 and "is not a folder" in missing.output
