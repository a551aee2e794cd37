"""Pack a manifest's images into one tar and unpack it where a step runs, so the data travels with the artifact.

A manifest names images relative to its root; on a cluster every step runs in its own pod, where the folder
`load_data` read does not exist. The dataset artifact therefore carries the images (one uncompressed tar: JPEGs
are already compressed, and one object moves faster through an object store than thousands), and every reader
unpacks it once per machine into a local cache keyed by the manifest's fingerprint, checking each file's sha256.

A copy is trusted without re-hashing once its marker exists, so the cache is the user's own (see
`har_core.locations`): never a predictable folder under the shared `/tmp`. It keeps the `MAX_UNPACKED` most
recently used datasets.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from har_core.data.dataset import DatasetManifest
from har_core.locations import check_owned, private_directory, user_cache_dir
from har_core.runtime.hashing import file_sha256

logger = logging.getLogger(__name__)

CACHE_ENV_VAR = "HAR_CLIP_DATA_CACHE"
COMPLETE_MARKER = ".unpacked"
MAX_UNPACKED = 4


class DatasetIntegrityError(RuntimeError):
    """A file that arrived differs from the one the manifest describes (its sha256 does not match)."""


def local_data_cache() -> Path:
    """This user's private folder of unpacked datasets: `$HAR_CLIP_DATA_CACHE`, else `<user cache>/data`."""
    if os.environ.get(CACHE_ENV_VAR):
        return private_directory(os.environ[CACHE_ENV_VAR])
    return private_directory(private_directory(user_cache_dir()) / "data")


def write_archive(manifest: DatasetManifest, archive: str | Path) -> Path:
    """Write every record's file (read from `manifest.root`) into `archive` under its relative path."""
    root = Path(manifest.root)
    with tarfile.open(archive, "w") as tar:
        for record in manifest.all_records():
            tar.add(root / record.path, arcname=record.path, recursive=False)
    return Path(archive)


def unpacked(manifest: DatasetManifest, fetch_archive: Callable[[Path], None]) -> DatasetManifest:
    """The manifest with `root` at a local folder holding its images, fetching the archive only on a cache miss.

    `fetch_archive(path)` copies the archive to the local `path` (from the artifact store, for example).
    """
    target = local_data_cache() / manifest.fingerprint()
    if (target / COMPLETE_MARKER).is_file():
        check_owned(target)
        (target / COMPLETE_MARKER).touch()  # most recently used: kept by `prune`
    else:
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target.parent))
        try:
            archive = staging / "images.tar"
            fetch_archive(archive)
            extract(archive, staging / "images")
            archive.unlink()
            verify_files(manifest, staging / "images")
            (staging / "images" / COMPLETE_MARKER).touch()
            try:
                (staging / "images").rename(target)
            except OSError:  # another process finished first; its copy is equally verified
                logger.debug("Dataset %s was unpacked concurrently; using that copy", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("Unpacked %d images to %s", len(manifest.all_records()), target)
        prune(target.parent, keep=MAX_UNPACKED)
    return manifest.model_copy(update={"root": str(target)})


def extract(archive: Path, folder: Path) -> None:
    """Unpack `archive` into `folder`, refusing anything but plain files and folders inside it.

    Python 3.11.4+ has tarfile's `data` filter for this; Debian 12's system Python (3.11.2) does not, so there
    the members are checked here before extracting.
    """
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
            return
        for member in tar.getmembers():
            path = Path(member.name)
            if not (member.isfile() or member.isdir()) or path.is_absolute() or ".." in path.parts:
                raise DatasetIntegrityError(
                    f"The dataset archive holds {member.name!r}, which is not a plain file or folder inside it; "
                    "refusing to unpack it."
                )
            member.mode &= 0o755
        tar.extractall(folder)


def prune(cache: Path, keep: int) -> None:
    """Delete all but the `keep` most recently used complete datasets in `cache`."""
    markers = sorted(cache.glob(f"*/{COMPLETE_MARKER}"), key=lambda marker: marker.stat().st_mtime, reverse=True)
    for marker in markers[keep:]:
        logger.info("Removing the unpacked dataset %s (more than %d cached)", marker.parent, keep)
        shutil.rmtree(marker.parent, ignore_errors=True)


def verify_files(manifest: DatasetManifest, root: str | Path) -> None:
    """Every record's file under `root` must exist and match its sha256; the first that does not is named."""
    root = Path(root)
    for record in manifest.all_records():
        path = root / record.path
        if not path.is_file():
            raise DatasetIntegrityError(f"Dataset file {record.path!r} is missing under {str(root)!r}.")
        if record.sha256 is not None and file_sha256(path) != record.sha256:
            raise DatasetIntegrityError(
                f"Dataset file {record.path!r} does not match its manifest sha256 {record.sha256[:12]}…: "
                "it changed after the manifest was written or was damaged in transit."
            )
