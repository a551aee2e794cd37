"""`run.py --reproduce`: a tiny run on a folder source kept in a git repository, rebuilt bit for bit, refused once a
data file changed, and run anyway with --allow-drift (in the session's real ZenML store)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from har_core.config import SyntheticDataConfig
from har_core.data.synthetic import generate_synthetic_images
from har_core.runtime.provenance import TrainingProvenance
from har_zenml.names import (
    DATASET_ARTIFACT,
    PROVENANCE_METADATA_KEY,
    REPRODUCTION_METADATA_KEY,
    TRAINED_MODEL_ARTIFACT,
)
from tests.conftest import CPU_LOCK
from tests.pipelines.pipeline_runs import TINY_LABELS, run_training, tiny_config

pytestmark = pytest.mark.slow

CHANGED_FILE = f"{TINY_LABELS[1]}/00003.jpg"


def git(repo: Path, *args: str) -> str:
    identity = ("-c", "user.name=har-clip tests", "-c", "user.email=tests@har-clip.invalid")
    return subprocess.run(["git", *identity, "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture(scope="module")
def data_repo(tmp_path_factory) -> Path:
    """A git repository holding a `<label>/*.jpg` folder, committed (synthetic data would regenerate from its seed)."""
    repo = tmp_path_factory.mktemp("data-repo")
    generate_synthetic_images(repo / "images", TINY_LABELS, SyntheticDataConfig(images_per_class=6, image_size=32))
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "images")
    return repo


@pytest.fixture(scope="module")
def original(zenml_client, data_repo, tmp_path_factory):
    """The tiny config on that folder, exporting only the PyTorch format (the comparison is about training)."""
    workdir = tmp_path_factory.mktemp("reproduce")
    path = tiny_config(workdir, source="folder", root=str(data_repo / "images"))
    config = yaml.safe_load(path.read_text())
    config["parameters"]["export"].update(formats=["pytorch"], parity_images=16, serving_parity_images=0)
    config["parameters"]["benchmark"].update(warmup=0, latency_iterations=2, throughput_iterations=1)
    path.write_text(yaml.safe_dump(config))
    run, _ = run_training(zenml_client, path, "--no-cache")
    return run


def reproduce(*args: str):
    import run

    return CliRunner().invoke(run.main, ["--reproduce", *args])


def provenance_of(version) -> TrainingProvenance:
    return TrainingProvenance.model_validate(version.run_metadata[PROVENANCE_METADATA_KEY])


def test_the_model_version_and_the_card_record_how_the_model_was_made(original, data_repo):
    recorded = provenance_of(original.model_version)
    card = original.steps["train_model"].outputs[TRAINED_MODEL_ARTIFACT][0].load().provenance
    assert card == recorded and recorded.run == original.name
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert recorded.code.commit == head and (recorded.code.diff_artifact is not None) == recorded.code.dirty
    assert recorded.lock.file == CPU_LOCK and len(recorded.lock.sha256) == 64
    assert recorded.parameters["data"]["root"] == str(data_repo / "images")
    assert recorded.parameters["training"]["epochs"] == 1 and recorded.parameters["promotion"]["margin"] == 0.01
    assert recorded.stack.name == "local" and "local_process (local_process)" in recorded.stack.components.values()
    assert recorded.data.git_commit == git(data_repo, "rev-parse", "HEAD").strip() and recorded.data.git_dirty is False
    manifest = original.steps["load_data"].outputs[DATASET_ARTIFACT][0]
    assert recorded.data.fingerprint == manifest.run_metadata["fingerprint"] and recorded.data.source == "folder"
    assert recorded.seeds == {"training": 42, "split": 0, "tiny_backbone": 0}
    assert recorded.machine.torch_threads >= 1 and recorded.machine.cpu_model and recorded.machine.device == "cpu"
    assert {"torch", "transformers", "onnxruntime", "zenml", "python"} <= set(recorded.versions)


def test_a_reproduction_retrains_to_the_same_weights_and_metrics(zenml_client, original):
    result = reproduce(original.name)
    assert result.exit_code == 0, result.output + repr(result.exception)
    rerun = zenml_client.get_pipeline("training_pipeline").last_run
    assert rerun.id != original.id and rerun.steps["train_model"].status.value == "completed"  # caching off
    assert "Weights sha256: identical." in result.output
    assert "REPRODUCED bit for bit." in result.output and "outside the standard" not in result.output
    record = rerun.model_version.run_metadata[REPRODUCTION_METADATA_KEY]
    assert record["of_run"] == original.name and record["reproduced"] and record["drift"] == []
    assert provenance_of(rerun.model_version).reproduces.run == original.name


@pytest.fixture
def changed_data(data_repo):
    """One committed image redrawn (same name, other pixels) for one test, then restored from git: the module's
    other tests train and reproduce on the committed data, in whatever order they run."""
    path = data_repo / "images" / CHANGED_FILE
    Image.new("RGB", (32, 32), (255, 0, 255)).save(path)
    yield CHANGED_FILE
    git(data_repo, "checkout", "--", f"images/{CHANGED_FILE}")
    assert git(data_repo, "status", "--porcelain") == ""


def test_changed_data_is_refused_naming_the_file(zenml_client, original, changed_data):
    before = zenml_client.get_pipeline("training_pipeline").last_run.id
    result = reproduce(original.name)
    assert result.exit_code == 1
    paragraph = " ".join(result.output.split())
    assert f"Not reproducing run '{original.name}'" in paragraph and f"1 changed ({changed_data})" in paragraph
    assert "--allow-drift" in paragraph and "the code" not in paragraph and "the lock" not in paragraph
    assert zenml_client.get_pipeline("training_pipeline").last_run.id == before  # nothing ran


def test_allow_drift_runs_and_records_what_differed(zenml_client, original, changed_data):
    result = reproduce(original.model_version.name, "--allow-drift")  # by model version this time
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "Drift, allowed by --allow-drift: the data under" in result.output and changed_data in result.output
    rerun = zenml_client.get_pipeline("training_pipeline").last_run
    record = rerun.model_version.run_metadata[REPRODUCTION_METADATA_KEY]
    assert record["of_run"] == original.name and changed_data in record["drift"][0]
    assert changed_data in provenance_of(rerun.model_version).reproduces.drift[0]
    assert "The inputs drifted (1), so a match was not expected" in result.output
