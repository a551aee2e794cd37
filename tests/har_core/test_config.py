import pytest
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
