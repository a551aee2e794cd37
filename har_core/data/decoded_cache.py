"""Decode once: the images of a record list, resized for the model, in one memory-mapped uint8 file.

Decoding and resizing a photo costs milliseconds of CPU; a GPU step needs hundreds of images in that time. Each
image is stored as `preprocess` resizes it (upright RGB, short side at `resize_shortest_edge`, bicubic from the full
decode) and is read back as a (height, width, 3) view of the mapped file; augmentation still runs per step on it.
Cropping a stored image gives exactly the pixels a full decode gives (`har_core.runtime.preprocess.resized`), so
with `augmentation: none` training sees the same tensors; augmentation crops the resized image instead of the full
one (a measured, small difference: docs/training.md).

One entry per (records, preprocessing) fingerprint under a private per-user folder. An entry is built in a staging
folder and renamed into place complete, under an exclusive `flock` that serialises builds and eviction; readers map
it under the shared lock, so torchrun's processes on one machine build it once and share it. The folder is bounded:
least recently used entries are removed to fit `max_bytes`, and a dataset larger than the bound is not cached.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from PIL import Image

from har_core.data.dataset import ImageRecord
from har_core.locations import check_owned, private_directory, user_cache_dir
from har_core.runtime.images import InvalidImageError, open_image
from har_core.runtime.preprocess import PreprocessConfig, resized

logger = logging.getLogger(__name__)

CACHE_ENV_VAR = "HAR_CLIP_DECODED_CACHE"
FORMAT_VERSION = 1  # part of every key: a change of layout or resizing never reads an old entry
PIXELS_FILE = "pixels.u8"
INDEX_FILE = "index.npy"  # (n, 3) int64: byte offset, height, width of each image
LOCK_FILE = ".lock"


def decoded_cache_root() -> Path:
    """This user's private folder of decoded images: `$HAR_CLIP_DECODED_CACHE`, else `<user cache>/decoded`."""
    if os.environ.get(CACHE_ENV_VAR):
        return private_directory(os.environ[CACHE_ENV_VAR])
    return private_directory(private_directory(user_cache_dir()) / "decoded")


class DecodedImages:
    """Read side of one entry: image `i` as a read-only (height, width, 3) uint8 view of the mapped file.

    While an instance lives (in any process, forked DataLoader workers included) it holds a shared `flock` on the
    entry, so eviction never removes data in use. It pickles as its folder alone and maps the file again where it
    is unpickled; the pages are shared through the page cache, never copied per worker.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._open()

    def _open(self) -> None:
        self._in_use = open(self.directory / INDEX_FILE, "rb")  # noqa: SIM115 (held for the object's life)
        fcntl.flock(self._in_use, fcntl.LOCK_SH)
        self.index = np.load(self._in_use)
        self._pixels = np.memmap(self.directory / PIXELS_FILE, np.uint8, mode="r")

    def __len__(self) -> int:
        return len(self.index)

    @property
    def nbytes(self) -> int:
        return int((self.index[:, 1] * self.index[:, 2] * 3).sum())

    def __getitem__(self, position: int) -> np.ndarray:
        offset, height, width = (int(value) for value in self.index[position])
        return self._pixels[offset : offset + height * width * 3].reshape(height, width, 3)

    def __getstate__(self) -> dict:
        return {"directory": self.directory}

    def __setstate__(self, state: dict) -> None:
        self.directory = state["directory"]
        self._open()


def cache_key(records: Sequence[ImageRecord], config: PreprocessConfig) -> str:
    """sha256 over the resize and each record's content hash (path, size and mtime where no hash is known)."""
    identities = []
    for record in records:
        if record.sha256 is not None:
            identities.append(record.sha256)
        else:
            try:
                stat = os.stat(record.path)
            except FileNotFoundError as error:
                raise InvalidImageError(f"{record.path}: no such file.") from error
            identities.append(f"{os.path.abspath(record.path)}:{stat.st_size}:{stat.st_mtime_ns}")
    content = [FORMAT_VERSION, config.resize_shortest_edge, identities]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def decoded_images(
    records: Sequence[ImageRecord],
    config: PreprocessConfig,
    max_bytes: int,
    threads: int = 1,
    root: Path | None = None,
) -> DecodedImages | None:
    """The records' decoded images, built on first use; None when they need more than `max_bytes` (not cached).

    `threads` decode in parallel while building (PIL releases the GIL). Raises `InvalidImageError` naming the
    file when an image cannot be decoded, as training without the cache does.
    """
    if not records:
        return None
    root = root or decoded_cache_root()
    target = root / cache_key(records, config)
    with _locked(root, fcntl.LOCK_SH):
        if (target / INDEX_FILE).is_file():
            return _use(target)
    with _locked(root, fcntl.LOCK_EX):
        if (target / INDEX_FILE).is_file():  # another process built it while this one waited
            return _use(target)
        shapes = [_resized_shape(record.path, config) for record in records]
        needed = sum(height * width * 3 for height, width in shapes)
        if needed > max_bytes or not _evict(root, keep_bytes=max_bytes - needed):
            logger.warning(
                "Not caching decoded images: %d images need %.2f GiB, and training.decoded_cache_max_gib (%.2f GiB) "
                "leaves no room for them beside the entries in use; every epoch decodes the files instead.",
                len(records), needed / 2**30, max_bytes / 2**30,
            )  # fmt: skip
            return None
        _build(target, records, shapes, config, threads)
        return _use(target)


def _use(target: Path) -> DecodedImages:
    check_owned(target)
    os.utime(target / INDEX_FILE)  # most recently used: kept by `_evict`
    return DecodedImages(target)


@contextmanager
def _locked(root: Path, mode: int) -> Iterator[None]:
    """`flock` on the root's lock file: released by the kernel when its holder dies, so a killed build never
    leaves the others waiting."""
    with open(root / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _resized_shape(path: str, config: PreprocessConfig) -> tuple[int, int]:
    """(height, width) `resized` gives for the file, from its header alone; EXIF turns swap the two sides only,
    which the size in bytes does not see (the real shape is recorded while building)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Exception:  # noqa: BLE001 (open_image raises the project's own error naming the file)
        open_image(path)
        raise
    short, long = min(width, height), max(width, height)
    new_long = max(config.resize_shortest_edge, int(config.resize_shortest_edge * long / short))
    return (new_long, config.resize_shortest_edge) if width <= height else (config.resize_shortest_edge, new_long)


def _build(
    target: Path,
    records: Sequence[ImageRecord],
    shapes: Sequence[tuple[int, int]],
    config: PreprocessConfig,
    threads: int,
) -> None:
    """Decode every record into a staging folder, then rename it to `target` (complete or absent, never half)."""
    sizes = np.array([height * width * 3 for height, width in shapes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
    try:
        pixels = np.memmap(staging / PIXELS_FILE, np.uint8, mode="w+", shape=(max(int(sizes.sum()), 1),))
        index = np.zeros((len(records), 3), dtype=np.int64)

        def decode(position: int) -> None:
            array = np.asarray(resized(open_image(records[position].path), config))
            if array.size != sizes[position]:
                raise RuntimeError(f"{records[position].path}: decoded to {array.shape}, its header said otherwise.")
            pixels[offsets[position] : offsets[position] + array.size] = array.reshape(-1)
            index[position] = (offsets[position], array.shape[0], array.shape[1])

        with ThreadPoolExecutor(max(1, threads), thread_name_prefix="har-clip-decode") as pool:
            list(pool.map(decode, range(len(records))))
        pixels.flush()
        np.save(staging / INDEX_FILE, index)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("Decoded %d images once into %s (%.1f MiB)", len(records), target, sizes.sum() / 2**20)


def _evict(root: Path, keep_bytes: int) -> bool:
    """Remove least recently used entries (and staging left by killed builds) until the rest fit `keep_bytes`;
    False when entries still in use (a shared lock held) leave no room.

    Called under the exclusive root lock, so no reader is between finding an entry and locking it.
    """
    for staging in root.glob(".building-*"):
        shutil.rmtree(staging, ignore_errors=True)
    entries = sorted(root.glob(f"*/{INDEX_FILE}"), key=lambda index: index.stat().st_mtime, reverse=True)
    used = 0
    for index in entries:
        size = (index.parent / PIXELS_FILE).stat().st_size
        if used + size > keep_bytes and _unused(index):
            logger.info("Removing decoded images %s (training.decoded_cache_max_gib)", index.parent)
            shutil.rmtree(index.parent, ignore_errors=True)
        else:
            used += size
    return used <= keep_bytes


def _unused(index: Path) -> bool:
    """No process holds the entry (a `DecodedImages` keeps a shared lock on its index file)."""
    with open(index, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True
