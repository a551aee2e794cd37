"""What the viewer reads from ZenML, on the session store's one tiny run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from har_core.runtime.hashing import file_sha256

pytestmark = pytest.mark.slow


def test_mistake_images_come_back_after_the_data_cache_dropped_them(viewer_run, monkeypatch, tmp_path):
    """The data cache keeps a few datasets (later runs push older ones out), and another machine has its own cache:
    the recorded image paths are restored by unpacking the run's dataset artifact again."""
    from viewer import store

    run, _ = viewer_run
    manifest = store.run_dataset(run)
    hashes = {record.path: record.sha256 for record in manifest.all_records()}
    before = store.evaluation_predictions(run).images
    folder = Path(manifest.root)  # the unpacked copy: <data cache>/<fingerprint>
    assert before[0].path.startswith(f"{folder}/")
    shutil.rmtree(folder)  # what the cache does to the least recently used dataset

    again = store.evaluation_predictions(run).images
    assert [image.path for image in again] == [image.path for image in before]
    relative = before[0].path.split(f"{folder}/", 1)[1]
    assert Path(again[0].path).is_file() and file_sha256(again[0].path) == hashes[relative]

    shutil.rmtree(folder)
    with monkeypatch.context() as elsewhere:  # another machine: its own cache, where the images never were
        elsewhere.setenv("HAR_CLIP_DATA_CACHE", str(tmp_path / "another-cache"))
        moved = store.evaluation_predictions(run).images
    assert moved[0].path == str(tmp_path / "another-cache" / manifest.fingerprint() / relative)
    assert all(Path(image.path).is_file() for image in moved)
    assert [image.model_dump(exclude={"path"}) for image in moved] == [
        image.model_dump(exclude={"path"}) for image in before
    ]
    assert Path(store.evaluation_predictions(run).images[0].path).is_file()  # and back here, for the other tests
