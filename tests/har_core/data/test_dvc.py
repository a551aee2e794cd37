"""DVC data versions on a throw-away git + DVC repository with a local remote, built by the real `prepare` stage."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from har_core.config import DataConfig, DvcDataConfig
from har_core.data.dvc import DvcDataError, fetch_dvc_dataset, resolve_dvc_version
from har_core.data.sources import manifest_for_folder
from har_core.runtime.hashing import file_sha256
from tests.conftest import PROJECT_ROOT

LABELS = ["calling", "clapping", "cycling"]


def _run(command: list[str], cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "GIT_AUTHOR_NAME": "t", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_EMAIL": "t@example.com"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{command}: {result.stdout}\n{result.stderr}"
    return result.stdout


def _dvc(*args: str, cwd: Path) -> str:
    return _run([sys.executable, "-m", "dvc", *args], cwd)


def _release(repo: Path, image_size: int, tag: str, push: bool = True) -> None:
    """Set the prepare params, `dvc repro`, commit, tag and (optionally) `dvc push`."""
    params = {"prepare": {"output": "data/har-images", "data": {
        "source": "synthetic", "labels": LABELS, "cache_dir": ".cache/data",
        "synthetic": {"images_per_class": 6, "image_size": image_size, "seed": 0},
    }}}  # fmt: skip
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    _dvc("repro", cwd=repo)
    _run(["git", "add", "-A"], repo)
    _run(["git", "commit", "-qm", tag], repo)
    _run(["git", "tag", tag], repo)
    if push:
        _dvc("push", cwd=repo)


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory) -> Path:
    """Tags data-v1 (32 px) and data-v2 (40 px) pushed to a local remote; data-v3 (48 px) never pushed."""
    base = tmp_path_factory.mktemp("dvc")
    repo = base / "repo"
    repo.mkdir()
    _run(["git", "init", "-q"], repo)
    _dvc("init", "-q", cwd=repo)
    _dvc("config", "core.analytics", "false", cwd=repo)
    _dvc("remote", "add", "-d", "local", str(base / "remote"), cwd=repo)
    stages = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    stage = stages["stages"]["prepare"]
    stage["cmd"] = stage["cmd"].replace("python", sys.executable, 1)
    stage.pop("deps")  # the project's source files are not in this throw-away repository
    (repo / "dvc.yaml").write_text(yaml.safe_dump(stages))
    (repo / ".gitignore").write_text(".cache/\n")
    _release(repo, 32, "data-v1")
    _release(repo, 40, "data-v2")
    _release(repo, 48, "data-v3", push=False)
    return repo


def _config(repo: Path, rev: str | None) -> DvcDataConfig:
    return DvcDataConfig(repo=str(repo), path="data/har-images", rev=rev)


def test_prepare_stage_writes_images_and_a_manifest_and_dvc_push_fills_the_remote(dvc_repo):
    folder = dvc_repo / "data" / "har-images"
    with (folder / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 18 and {row["label"] for row in rows} == set(LABELS)
    assert all(file_sha256(folder / row["file"]) == row["sha256"] for row in rows)
    assert len(list((dvc_repo.parent / "remote").rglob("*"))) > 18  # the pushed objects


def test_a_tag_is_loaded_as_it_was_and_fetched_once(dvc_repo, tmp_path):
    first_folder, v1, fetched = fetch_dvc_dataset(_config(dvc_repo, "data-v1"), tmp_path)
    assert fetched and v1.files == 19 and v1.md5.endswith(".dir") and v1.rev == "data-v1"
    assert len(v1.commit) == 40
    again_folder, again, fetched_again = fetch_dvc_dataset(_config(dvc_repo, "data-v1"), tmp_path)
    assert (again_folder, again, fetched_again) == (first_folder, v1, False)
    _, v2, _ = fetch_dvc_dataset(_config(dvc_repo, "data-v2"), tmp_path)
    assert v2.md5 != v1.md5
    data = DataConfig(source="dvc", labels=LABELS, split={"train": 0.5, "val": 0.25, "test": 0.25})
    manifest = manifest_for_folder(first_folder, data, source="dvc", revision="dvc:data-v1")
    assert len(manifest.all_records()) == 18
    from PIL import Image

    with Image.open(first_folder / manifest.train[0].path) as image:
        assert image.size == (32, 32)  # v1 as it was, although the working tree now holds v3


def test_unknown_revision_lists_the_tags(dvc_repo, tmp_path):
    with pytest.raises(DvcDataError, match=r"data-nope.*data-v1.*data-v2.*data-v3"):
        resolve_dvc_version(_config(dvc_repo, "data-nope"))


def test_data_on_no_storage_says_to_dvc_pull(dvc_repo, tmp_path):
    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(dvc_repo), str(clone)], tmp_path)  # no DVC cache; v3 was never pushed
    with pytest.raises(DvcDataError, match=r"dvc pull data/har-images") as error:
        fetch_dvc_dataset(_config(clone, "data-v3"), tmp_path / "cache")
    assert "data-v3" in str(error.value) and "dvc push" in str(error.value)
    folder, _, fetched = fetch_dvc_dataset(_config(clone, "data-v2"), tmp_path / "cache")  # pushed: from the remote
    assert fetched and (folder / "manifest.csv").is_file()


def test_a_damaged_file_is_named(dvc_repo, tmp_path):
    _, fs = resolve_dvc_version(_config(dvc_repo, "data-v1"))
    name, entry = sorted(fs.find("data/har-images", detail=True).items())[0]
    md5 = entry["dvc_info"]["md5"]
    cached = dvc_repo / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    original = cached.read_bytes()
    cached.chmod(0o644)
    try:
        cached.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))
        with pytest.raises(DvcDataError, match=name.removeprefix("data/har-images/")):
            fetch_dvc_dataset(_config(dvc_repo, "data-v1"), tmp_path)
    finally:
        cached.write_bytes(original)
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.mark.slow
def test_training_reruns_for_a_new_dvc_version_only(zenml_client, dvc_repo, tmp_path):
    from har_zenml.names import DATASET_ARTIFACT
    from tests.pipelines.pipeline_runs import run_training, step_statuses, tiny_config

    def config(rev: str) -> Path:
        dvc = {"repo": str(dvc_repo), "path": "data/har-images", "rev": rev}
        return tiny_config(tmp_path, name=f"{rev}.yaml", source="dvc", dvc=dvc)

    first, _ = run_training(zenml_client, config("data-v1"), "--no-cache")
    assert "load_dvc_data" in first.steps and first.status.value == "completed"
    metadata = first.steps["load_dvc_data"].outputs[DATASET_ARTIFACT][0].run_metadata
    assert metadata["dvc_rev"] == "data-v1" and metadata["dvc_files"] == 19 and metadata["fetched"] is True
    assert str(metadata["dvc_md5"]).endswith(".dir") and len(str(metadata["dvc_commit"])) == 40
    same, _ = run_training(zenml_client, config("data-v1"))
    statuses = step_statuses(same)
    assert statuses.pop("load_dvc_data") == "completed" and set(statuses.values()) == {"cached"}
    assert same.steps["load_dvc_data"].outputs[DATASET_ARTIFACT][0].run_metadata["fetched"] is False
    newer, _ = run_training(zenml_client, config("data-v2"))
    assert step_statuses(newer)["train_model"] == "completed"


def test_run_stops_before_any_step_for_an_unknown_revision(dvc_repo, tmp_path):
    from click.testing import CliRunner

    import run
    from tests.pipelines.pipeline_runs import tiny_config

    config = tiny_config(tmp_path, source="dvc", dvc={"repo": str(dvc_repo), "rev": "data-v9"})
    result = CliRunner().invoke(run.main, ["--config", str(config)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "data-v9" in result.output and "data-v1, data-v2, data-v3" in result.output
