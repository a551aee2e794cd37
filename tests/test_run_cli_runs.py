"""Real runs through run.py: your own photos in your own split, and a step that fails mid-run."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import run
from har_zenml.names import DATASET_ARTIFACT, EVALUATION_REPORT_ARTIFACT, FINE_TUNED_EVALUATION_STEP
from tests.conftest import PROJECT_ROOT
from tests.har_core.data.test_scan import write_images
from tests.test_run_cli_data import folder_run_config

pytestmark = pytest.mark.slow

LABELS = ("calling", "eating", "running", "texting")  # 4 of the 15, deliberately listed out of canonical order


def _short_training(path, **data):
    config = yaml.safe_load(path.read_text())
    config["parameters"]["data"].update(data)
    config["parameters"]["training"].update(epochs=2, early_stopping_patience=None)
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_pre_split_folder_with_four_labels_trains_a_four_way_model(zenml_client, tmp_path):
    root = tmp_path / "photos"
    for offset, label in enumerate(reversed(LABELS)):
        write_images(root / "train" / label, 8, start=40 * offset)
        write_images(root / "test" / label, 3, start=40 * offset + 20)
    (root / "train" / "calling" / "notes.txt").write_text("taken in 2019")
    (root / "train" / "sleeping").mkdir()
    config = _short_training(folder_run_config(tmp_path, root))
    result = CliRunner().invoke(run.main, ["--config", str(config)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    output = result.output
    assert "pre-split layout <root>/{train,val,test}/<label>/*; no val/, so 20% of train carved out as val" in output
    assert f"Labels: 4 found in the data ({', '.join(LABELS)}); absent, so not in this model: clapping" in output
    assert "Ignored: train/calling/notes.txt (not an image file)" in output
    assert "Ignored: train/sleeping/ (empty label folder)" in output
    pipeline_run = zenml_client.get_pipeline("training_pipeline").last_run
    manifest = pipeline_run.steps["load_data"].outputs[DATASET_ARTIFACT][0].load()
    assert manifest.labels == list(LABELS)
    assert len(manifest.test) == 12 and all(record.path.startswith("test/") for record in manifest.test)
    assert (
        len(manifest.val) == 6
        and len(manifest.train) == 26
        and all(record.path.startswith("train/") for record in manifest.val)
    )
    report = pipeline_run.steps[FINE_TUNED_EVALUATION_STEP].outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    assert report.labels == list(LABELS) and len(report.confusion_matrix) == 4
    assert "(12 images, 4 labels)" in output


def test_a_failing_step_ends_the_cli_with_its_cause_in_a_few_lines(zenml_client, tmp_path):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    config["parameters"]["data"].update(cache_dir=str(tmp_path / "data"), synthetic={"images_per_class": 8})
    config["parameters"]["classifier"] = {"backbone": str(not_a_model)}  # exists, so the pre-run check passes
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    runs_before = zenml_client.list_pipeline_runs(size=1).total
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "run.py"), "--config", str(path)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr and "╭" not in result.stderr
    error = result.stderr[result.stderr.index("Error: Pipeline run") :].splitlines()
    assert len(error) <= 6, error
    assert error[1].startswith("Step load_base_model failed: BackboneUnavailableError: Could not load the CLIP")
    log_line = next(line for line in error if line.startswith("Full log with the traceback: "))
    log = Path(log_line.split(": ", 1)[1]).read_text()
    assert "Traceback" in log  # the full story stays in ZenML's step log
    assert zenml_client.list_pipeline_runs(size=1).total == runs_before + 1
    failed = zenml_client.get_pipeline("training_pipeline").last_run
    assert failed.status.value == "failed" and failed.steps["load_base_model"].status.value == "failed"
