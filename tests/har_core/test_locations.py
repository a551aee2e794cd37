"""Relative config paths anchor at the project root; private folders are created 0700 and checked for ownership."""

import os
from pathlib import Path

import pytest

from har_core.config import TrainingPipelineParameters
from har_core.locations import UnsafeDirectoryError, anchor_paths, private_directory


def test_every_relative_path_is_anchored_and_absolute_ones_are_kept(tmp_path):
    parameters = TrainingPipelineParameters.model_validate(
        {
            "data": {"source": "folder", "root": "data/images", "cache_dir": "/srv/cache"},
            "training": {"resume_from": "checkpoints/run/resume/step-3"},
        }
    )
    anchored = anchor_paths(parameters, tmp_path)
    assert anchored.data.root == tmp_path / "data" / "images"
    assert anchored.data.cache_dir == Path("/srv/cache")
    assert anchored.classifier.cache_dir == tmp_path / ".cache" / "har-clip" / "backbones"
    assert anchored.training.output_dir == tmp_path / ".cache" / "har-clip" / "checkpoints"
    assert anchored.training.resume_from == tmp_path / "checkpoints" / "run" / "resume" / "step-3"
    assert anchored.export.output_dir == tmp_path / ".cache" / "har-clip" / "exports"
    assert parameters.training.output_dir == Path(".cache/har-clip/checkpoints")  # the original is unchanged


def test_latest_stays_a_word():
    parameters = TrainingPipelineParameters.model_validate({"training": {"resume_from": "latest"}})
    assert anchor_paths(parameters, "/project").training.resume_from == "latest"


def test_a_link_is_not_a_private_folder(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "cache").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeDirectoryError, match="is not a folder"):
        private_directory(tmp_path / "cache")


def test_a_private_folder_is_created_for_this_user_only(tmp_path):
    folder = private_directory(tmp_path / "a" / "b")
    info = folder.stat()
    assert info.st_uid == os.geteuid() and info.st_mode & 0o777 == 0o700
