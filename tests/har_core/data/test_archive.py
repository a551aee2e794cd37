"""Unpacked datasets live in a private per-user cache; a copy planted by someone else is never read."""

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from har_core.data import archive as dataset_archive
from har_core.data.archive import CACHE_ENV_VAR, COMPLETE_MARKER, unpacked, write_archive
from har_core.locations import UnsafeDirectoryError
from tests.har_core.training.distributed_helpers import small_manifest

NOBODY = 65534


@pytest.fixture
def manifest(synthetic_root):
    """The small manifest with paths relative to its root, as `load_data` records them (an absolute path would
    make `copy / record.path` the session's own image, and planting a file there would corrupt it)."""
    full = small_manifest(synthetic_root)

    def relative(records):
        return [
            record.model_copy(update={"path": str(Path(record.path).relative_to(synthetic_root))}) for record in records
        ]

    return full.model_copy(update={split: relative(getattr(full, split)) for split in ("train", "val", "test")})


@pytest.fixture
def archive(manifest, tmp_path) -> Path:
    return write_archive(manifest, tmp_path / "images.tar")


def fetch_from(archive: Path, calls: list[Path]):
    def fetch(local: Path) -> None:
        calls.append(local)
        shutil.copy(archive, local)

    return fetch


def plant_copy(folder: Path, manifest) -> Path:
    """A complete-looking copy (marker included) whose first image another user replaced."""
    shutil.copytree(manifest.root, folder)
    target = folder / manifest.train[0].path
    assert target.resolve().is_relative_to(folder.resolve()), f"{target} is not inside the planted copy"
    target.write_bytes(b"planted")
    (folder / COMPLETE_MARKER).touch()
    return folder


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_copy_planted_in_the_shared_temp_folder_is_not_read(manifest, archive, tmp_path, monkeypatch):
    shared_tmp = tmp_path / "system-tmp"
    shared_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared_tmp))
    planted = plant_copy(shared_tmp / "har-clip-data" / manifest.fingerprint(), manifest)  # the old location
    monkeypatch.delenv(CACHE_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    calls: list[Path] = []

    local = unpacked(manifest, fetch_from(archive, calls))

    cache = tmp_path / "xdg" / "har-clip"
    assert Path(local.root) == cache / "data" / manifest.fingerprint()
    assert len(calls) == 1  # fetched and verified, not taken from the planted copy
    first = manifest.train[0].path
    assert (Path(local.root) / first).read_bytes() == (Path(manifest.root) / first).read_bytes()
    assert (planted / first).read_bytes() == b"planted"
    assert mode_of(cache) == mode_of(cache / "data") == 0o700


def test_the_cache_defaults_to_the_users_home(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV_VAR, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert dataset_archive.local_data_cache() == tmp_path / "home" / ".cache" / "har-clip" / "data"


def test_a_second_load_reuses_the_copy_and_an_open_cache_is_made_private(manifest, archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    monkeypatch.setenv(CACHE_ENV_VAR, str(cache))
    calls: list[Path] = []
    first = unpacked(manifest, fetch_from(archive, calls))
    second = unpacked(manifest, fetch_from(archive, calls))
    assert first.root == second.root and len(calls) == 1
    assert mode_of(cache) == 0o700


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="handing a folder to another user (chown) needs root")


@needs_root
def test_a_copy_owned_by_another_user_is_refused(manifest, archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV_VAR, str(cache))
    planted = plant_copy(cache / manifest.fingerprint(), manifest)
    os.chown(planted, NOBODY, NOBODY)
    calls: list[Path] = []
    with pytest.raises(UnsafeDirectoryError, match=rf"belongs to uid {NOBODY}, not to this user"):
        unpacked(manifest, fetch_from(archive, calls))
    assert calls == []


@needs_root
def test_a_cache_folder_owned_by_another_user_is_refused(manifest, archive, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chown(cache, NOBODY, NOBODY)
    monkeypatch.setenv(CACHE_ENV_VAR, str(cache))
    with pytest.raises(UnsafeDirectoryError, match="files another user can write are not read as a trusted cache"):
        unpacked(manifest, fetch_from(archive, []))


def test_only_the_most_recently_used_datasets_are_kept(tmp_path):
    for index in range(6):
        folder = tmp_path / f"dataset-{index}"
        folder.mkdir()
        (folder / COMPLETE_MARKER).touch()
        os.utime(folder / COMPLETE_MARKER, (1_000 + index, 1_000 + index))
    dataset_archive.prune(tmp_path, keep=4)
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"dataset-{index}" for index in range(2, 6)]


@pytest.mark.parametrize("with_filter", [True, False], ids=["data-filter", "python-3.11.2"])
def test_an_archive_member_outside_the_folder_is_refused(tmp_path, monkeypatch, with_filter):
    import tarfile

    if not with_filter:  # Debian 12's system Python has no extraction filters
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "evil.jpg").write_bytes(b"x")
    with tarfile.open(tmp_path / "images.tar", "w") as tar:
        tar.add(tmp_path / "source" / "evil.jpg", arcname="../evil.jpg")
    with pytest.raises((dataset_archive.DatasetIntegrityError, tarfile.TarError)):
        dataset_archive.extract(tmp_path / "images.tar", tmp_path / "out")
    assert not (tmp_path / "evil.jpg").exists()  # nothing written beside the target folder


def test_plain_files_unpack_without_extraction_filters(manifest, archive, tmp_path, monkeypatch):
    import tarfile

    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    dataset_archive.extract(archive, tmp_path / "out")
    dataset_archive.verify_files(manifest, tmp_path / "out")
