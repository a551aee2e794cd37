"""The manifest says what the data is: changed bytes re-run training, unchanged bytes hit ZenML's cache."""

from pathlib import Path

import pytest
from PIL import Image

from har_zenml.names import DATASET_ARTIFACT
from tests.pipelines.pipeline_runs import run_training, step_statuses, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fingerprints")


@pytest.fixture(scope="module")
def first_run(zenml_client, workdir):
    run, _ = run_training(zenml_client, tiny_config(workdir), "--no-cache")
    assert run.status.value == "completed"
    return run


def _manifest(run):
    return run.steps["load_data"].outputs[DATASET_ARTIFACT][0].load()


def test_manifest_records_hashes_and_revision_and_no_machine_path(first_run):
    manifest = _manifest(first_run)
    records = manifest.all_records()
    assert len(records) == 18 and all(len(record.sha256) == 64 for record in records)
    assert all(not Path(record.path).is_absolute() for record in records)
    assert manifest.revision.startswith("synthetic:")
    metadata = first_run.steps["load_data"].outputs[DATASET_ARTIFACT][0].run_metadata
    assert metadata["fingerprint"] == manifest.fingerprint() and metadata["num_images"] == 18


def test_unchanged_data_reuses_the_trained_model(zenml_client, workdir, first_run):
    run, _ = run_training(zenml_client, tiny_config(workdir))
    statuses = step_statuses(run)
    assert statuses.pop("load_data") == "completed" and set(statuses.values()) == {"cached"}


def test_redrawn_images_at_another_size_retrain(zenml_client, workdir, first_run):
    config = tiny_config(workdir, synthetic={"images_per_class": 6, "image_size": 40, "seed": 0})
    run, _ = run_training(zenml_client, config)
    assert step_statuses(run)["train_model"] == "completed"
    assert [r.path for r in _manifest(run).all_records()] == [r.path for r in _manifest(first_run).all_records()]


def test_an_image_edited_in_place_retrains(zenml_client, workdir, first_run):
    config = tiny_config(workdir, name="edited.yaml", cache_dir=str(workdir / "edited-data"))
    before, _ = run_training(zenml_client, config)
    manifest = _manifest(before)
    victim = Path(workdir / "edited-data" / "synthetic-0") / manifest.train[0].path
    Image.new("RGB", (32, 32), (255, 0, 255)).save(victim)  # same name, new bytes
    after, _ = run_training(zenml_client, config)
    assert step_statuses(after)["train_model"] == "completed"
    old = {r.path: r.sha256 for r in manifest.all_records()}
    new = {r.path: r.sha256 for r in _manifest(after).all_records()}
    assert old.keys() == new.keys()
    assert {path for path in old if old[path] != new[path]} == {manifest.train[0].path}
