from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from har_core.config import DataConfig, SplitConfig, TinyBackboneConfig, TrainingConfig, TrainingPipelineParameters


def test_unknown_keys_are_errors_that_name_the_key():
    with pytest.raises(ValidationError, match="epochz"):
        TrainingPipelineParameters.model_validate({"training": {"epochz": 3}})


def test_split_fractions_must_sum_to_one():
    with pytest.raises(ValidationError, match="sum to 1"):
        SplitConfig(train=0.6, val=0.3, test=0.3)


def test_folder_source_needs_a_root():
    with pytest.raises(ValidationError, match="data.root is required"):
        DataConfig(source="folder")


def test_choices_are_checked():
    with pytest.raises(ValidationError, match="augmentation"):
        TrainingConfig(augmentation="extreme")
    with pytest.raises(ValidationError, match="multiple of"):
        TinyBackboneConfig(image_size=60, patch_size=16)


def test_defaults_are_the_seed_projects():
    training = TrainingConfig()
    assert (training.learning_rate, training.batch_size, training.epochs) == (3e-6, 128, 15)
    split = SplitConfig()
    assert (split.train, split.val, split.test) == (0.60, 0.15, 0.25)


def test_distributed_settings_are_typed():
    config = TrainingConfig(distributed={"strategy": "fsdp", "nproc_per_node": 4}, resume_from="latest")
    assert config.distributed.nproc_per_node == 4 and config.resume_from == "latest"
    assert TrainingConfig(resume_from="runs/a/resume/step-00000010").resume_from == Path("runs/a/resume/step-00000010")
    assert TrainingConfig().distributed.strategy == "none" and TrainingConfig().distributed.nproc_per_node == "auto"
    with pytest.raises(ValidationError, match="nproc_per_node must be 'auto' or an integer >= 1"):
        TrainingConfig(distributed={"nproc_per_node": 0})
    with pytest.raises(ValidationError, match="distributed.backend"):
        TrainingConfig(distributed={"backend": "mpi"})
    with pytest.raises(ValidationError, match="checkpoint_every_n_steps"):
        TrainingConfig(checkpoint_every_n_steps=0)


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from har_core.runtime import device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device, "mps_available", lambda: True)
    assert device.resolve_device("auto").type == "mps"
    monkeypatch.setattr(device, "mps_available", lambda: False)
    assert device.resolve_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="device: mps was requested"):
        device.resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device, "mps_available", lambda: True)
    assert device.resolve_device("auto").type == "cuda"
