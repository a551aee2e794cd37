"""The torchrun launcher: a failing worker fails the call with its own error, bad configs stop before any worker."""

import pytest
import torch
from pydantic import ValidationError

from har_core.config import TrainingConfig
from har_core.data.dataset import DatasetManifest, ImageRecord
from har_core.model.classifier import HarClipClassifier, build_classifier
from har_core.runtime.labels import HAR_LABELS
from har_core.training.checkpoint import CheckpointMismatchError
from har_core.training.launcher import WorkerFailedError, run_training
from tests.har_core.training.distributed_helpers import processes_mentioning, small_manifest, training_config


@pytest.fixture(scope="module")
def manifest(synthetic_root):
    return small_manifest(synthetic_root)


@pytest.mark.slow
@pytest.mark.torchrun
def test_a_failing_worker_fails_the_launch_with_its_exception(tiny_model, manifest, tmp_path):
    missing = str(tmp_path / "vanished.jpg")
    broken = manifest.model_copy(update={"train": [ImageRecord(path=missing, label=0), *manifest.train[1:]]})
    job_dir = tmp_path / "job"
    with pytest.raises(WorkerFailedError, match=r"InvalidImageError: .*vanished\.jpg: no such file"):
        run_training(tiny_model, broken, training_config(tmp_path, "ddp", 2), tmp_path / "run", job_dir)
    assert processes_mentioning(str(job_dir)) == []


def test_an_unknown_strategy_is_named():
    with pytest.raises(ValidationError, match="distributed.strategy"):
        TrainingConfig(distributed={"strategy": "horovod"})


def test_a_global_batch_that_does_not_split_stops_before_any_worker(tiny_model, manifest, tmp_path):
    config = training_config(tmp_path, "ddp", 2, batch_size=7)
    with pytest.raises(ValueError, match="batch_size 7 is the global batch and must be divisible by the world size 2"):
        run_training(tiny_model, manifest, config, tmp_path / "run", tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_more_processes_than_gpus_is_refused_on_a_gpu_machine(tiny_model, manifest, tmp_path, monkeypatch):
    if not torch.cuda.is_available():  # emulate a one-GPU machine: only the device count is read before launch
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    gpus = torch.cuda.device_count()
    config = training_config(tmp_path, "ddp", gpus + 1, device="auto", batch_size=8 * (gpus + 1))
    with pytest.raises(ValueError, match=f"nproc_per_node is {gpus + 1} but this machine has {gpus} GPU"):
        run_training(tiny_model, manifest, config, tmp_path / "run", tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_a_missing_resume_checkpoint_is_an_error(tiny_model, manifest, tmp_path):
    for resume_from, message in ((tmp_path / "nowhere", "does not exist"), ("latest", "found no resumable checkpoint")):
        config = training_config(tmp_path, "ddp", 2, resume_from=resume_from)
        with pytest.raises(FileNotFoundError, match=message):
            run_training(tiny_model, manifest, config, tmp_path / "run", tmp_path / "job")
    assert not (tmp_path / "job").exists()


def test_a_checkpoint_of_another_label_set_is_refused(tiny_classifier_config, synthetic_root, tmp_path):
    manifest = small_manifest(synthetic_root)
    few = manifest.model_copy(update={"train": manifest.train[:8], "val": manifest.val[:4]})
    model = build_classifier(tiny_classifier_config, HAR_LABELS)
    run_training(model, few, training_config(tmp_path, epochs=1), tmp_path / "first", tmp_path / "job0")
    (checkpoint,) = (tmp_path / "first" / "resume").iterdir()
    other_labels = build_classifier(tiny_classifier_config, HAR_LABELS[:5])
    subset = DatasetManifest(labels=list(HAR_LABELS[:5]), root=manifest.root, train=[], val=[], test=[])
    for strategy, nproc in (("none", 1), ("ddp", 2)):
        config = training_config(tmp_path, strategy, nproc, resume_from=checkpoint)
        with pytest.raises(CheckpointMismatchError, match=r"another model or label set \(differs in \['labels'\]\)"):
            run_training(other_labels, subset, config, tmp_path / "second", tmp_path / "job1")
    assert not (tmp_path / "job1").exists()
    assert isinstance(HarClipClassifier.load(tmp_path / "first" / "best"), HarClipClassifier)
