"""Where batch inference reads: a project folder, a prefix on the active stack's artifact store, a DVC version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from har_core.config import DvcDataConfig, InferenceInputConfig
from har_core.inference.inputs import InputError, list_inputs
from har_zenml.inference_inputs import ArtifactStoreFolder, artifact_store_uri, input_folder
from tests.conftest import PROJECT_ROOT
from tests.har_core.runtime.test_video import gradient_frames
from tests.videos import encode_video


def _fill(root: Path, synthetic_root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "one.jpg").write_bytes((synthetic_root / "calling" / "00000.jpg").read_bytes())
    (root / "a" / "b" / "two.jpg").write_bytes((synthetic_root / "texting" / "00000.jpg").read_bytes())
    (root / "clip.webm").write_bytes(encode_video(gradient_frames(6), 6, "libvpx"))
    (root / "readme.md").write_text("left alone")


def test_a_relative_folder_is_the_projects(tmp_path):
    folder = input_folder(InferenceInputConfig(path="data/incoming"), tmp_path)
    assert folder.root == tmp_path / "data" / "incoming"
    assert input_folder(InferenceInputConfig(path=str(tmp_path / "x")), PROJECT_ROOT).root == tmp_path / "x"


def test_a_prefix_on_the_artifact_store_is_listed_and_read_through_it(zenml_client, synthetic_root):
    root = Path(zenml_client.active_stack.artifact_store.path)
    _fill(root / "incoming-test", synthetic_root)
    folder = input_folder(InferenceInputConfig(source="artifact_store", path="incoming-test"), PROJECT_ROOT)
    assert isinstance(folder, ArtifactStoreFolder) and folder.uri == f"{root}/incoming-test"
    files, other = list_inputs(folder, max_files=10)
    assert [(item.name, item.kind) for item in files] == [
        ("a/b/two.jpg", "image"), ("a/one.jpg", "image"), ("clip.webm", "video")
    ]  # fmt: skip
    assert other == 1 and folder.read("a/one.jpg") == (root / "incoming-test" / "a" / "one.jpg").read_bytes()
    assert files[2].size == (root / "incoming-test" / "clip.webm").stat().st_size and folder.local_path("x") is None
    assert artifact_store_uri(f"{root}/incoming-test/") == f"{root}/incoming-test/"
    with pytest.raises(InputError, match="not on the active stack's artifact store"):
        artifact_store_uri("s3://another-bucket/incoming")
    with pytest.raises(InputError, match="Nothing at"):
        input_folder(InferenceInputConfig(source="artifact_store", path="absent-prefix"), PROJECT_ROOT).names()


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(args, cwd=cwd, env=env, check=True, capture_output=True)


def test_a_dvc_version_is_fetched_and_read(tmp_path, synthetic_root):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("git", "init", "-q", cwd=repo)
    _git(sys.executable, "-m", "dvc", "init", "-q", cwd=repo)
    _fill(repo / "incoming", synthetic_root)
    _git(sys.executable, "-m", "dvc", "add", "-q", "incoming", cwd=repo)
    _git("git", "add", "-A", cwd=repo)
    _git("git", "commit", "-qm", "v1", cwd=repo)
    _git("git", "tag", "v1", cwd=repo)
    config = InferenceInputConfig(
        source="dvc", dvc=DvcDataConfig(repo=str(repo), path="incoming", rev="v1"), cache_dir=tmp_path / "cache"
    )
    folder = input_folder(config, PROJECT_ROOT)
    files, other = list_inputs(folder, max_files=10)
    assert [item.name for item in files] == ["a/b/two.jpg", "a/one.jpg", "clip.webm"] and other == 1
    assert folder.description.startswith("DVC incoming@v1 (commit ") and str(folder.root).startswith(str(tmp_path))
