"""The decoded-image cache on real files: same tensors as a full decode, built once, bounded, safe to share."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from har_core.data.dataset import ImageClassificationDataset, ImageRecord
from har_core.data.decoded_cache import INDEX_FILE, PIXELS_FILE, cache_key, decoded_images
from har_core.runtime.images import InvalidImageError
from har_core.runtime.preprocess import PreprocessConfig
from tests.conftest import PROJECT_ROOT

CONFIG = PreprocessConfig(resize_shortest_edge=40, crop_size=32)
BIG = 2**30


def _photo(width: int, height: int, seed: int) -> np.ndarray:
    """Smooth gradients plus noise: bicubic resizing of it differs from resizing anything else."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    return np.clip(base + rng.normal(0, 20, (height, width, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def mixed_images(tmp_path_factory) -> list[ImageRecord]:
    """JPEG landscape and portrait, an EXIF-rotated JPEG, RGBA and 16-bit PNGs, grayscale, palette, and one smaller
    than the crop (padded): every branch of preprocessing."""
    folder = tmp_path_factory.mktemp("mixed")
    paths = []

    def save(name: str, image: Image.Image, **options) -> None:
        image.save(folder / name, **options)
        paths.append(folder / name)

    save("landscape.jpg", Image.fromarray(_photo(120, 90, 0)), quality=90)
    save("portrait.jpg", Image.fromarray(_photo(70, 110, 1)), quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to be upright
    save("rotated.jpg", Image.fromarray(_photo(100, 60, 2)), exif=exif.tobytes())
    rgba = Image.fromarray(_photo(80, 80, 3)).convert("RGBA")
    rgba.putalpha(Image.fromarray(_photo(80, 80, 4)[..., 0]))
    save("transparent.png", rgba)
    save("deep.png", Image.fromarray(_photo(64, 50, 5)[..., 0].astype(np.uint16) * 250))
    save("gray.png", Image.fromarray(_photo(50, 64, 6)).convert("L"))
    save("palette.gif", Image.fromarray(_photo(60, 60, 7)).convert("P"))
    save("tiny.jpg", Image.fromarray(_photo(20, 12, 8)))
    return [ImageRecord(path=str(path), label=index % 3) for index, path in enumerate(paths)]


def test_without_augmentation_training_sees_the_tensors_of_a_full_decode(mixed_images, tmp_path):
    decoded = decoded_images(mixed_images, CONFIG, max_bytes=BIG, root=tmp_path)
    plain = ImageClassificationDataset(mixed_images, CONFIG)
    cached = ImageClassificationDataset(mixed_images, CONFIG, decoded=decoded)
    for index in range(len(mixed_images)):
        (expected, label), (actual, cached_label) = plain[index], cached[index]
        assert actual.dtype == torch.float32 and actual.shape == (3, 32, 32)
        assert torch.equal(actual, expected), mixed_images[index].path
        assert cached_label == label
    assert decoded[2].shape == (66, 40, 3)  # the EXIF-rotated 100x60 is stored upright: 40 wide


def test_augmented_reads_are_repeatable_in_loader_workers_and_differ_by_epoch(mixed_images, tmp_path):
    decoded = decoded_images(mixed_images, CONFIG, max_bytes=BIG, root=tmp_path)
    dataset = ImageClassificationDataset(mixed_images, CONFIG, augmentation="medium", seed=3, decoded=decoded)

    def epoch(number: int, workers: int) -> torch.Tensor:
        dataset.set_epoch(number)
        return torch.cat([pixels for pixels, _ in DataLoader(dataset, batch_size=4, num_workers=workers)])

    first = epoch(1, workers=0)
    assert torch.equal(epoch(1, workers=2), first)  # each worker maps the file itself (the dataset pickles small)
    assert not torch.equal(epoch(2, workers=0), first)
    unaugmented = torch.stack([ImageClassificationDataset(mixed_images, CONFIG)[i][0] for i in range(len(dataset))])
    assert not torch.equal(first, unaugmented)


def test_two_processes_build_one_entry_once_and_both_read_it(mixed_images, tmp_path):
    paths = [record.path for record in mixed_images]
    script = (
        "import logging, sys\n"
        "logging.basicConfig(level=logging.INFO)\n"
        "from har_core.data.dataset import ImageRecord\n"
        "from har_core.data.decoded_cache import decoded_images\n"
        "from har_core.runtime.preprocess import PreprocessConfig\n"
        f"records = [ImageRecord(path=p, label=0) for p in {paths!r}]\n"
        "images = decoded_images(records, PreprocessConfig(resize_shortest_edge=40, crop_size=32), 2**30, "
        f"root=__import__('pathlib').Path({str(tmp_path)!r}))\n"
        "print('shape', images[0].shape)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    processes = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0].decode() for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert sum("Decoded 8 images once" in output for output in outputs) == 1, outputs
    assert all("shape (40, 53, 3)" in output for output in outputs), outputs
    (entry,) = [path for path in tmp_path.iterdir() if path.is_dir()]  # no staging folder left behind
    assert entry.name == cache_key(mixed_images, CONFIG)
    assert oct(tmp_path.stat().st_mode & 0o777) == "0o700"


def test_the_folder_stays_within_its_bound_and_never_removes_data_in_use(mixed_images, tmp_path):
    first = decoded_images(mixed_images[:4], CONFIG, max_bytes=BIG, root=tmp_path)
    size = (first.directory / PIXELS_FILE).stat().st_size
    assert size == first.nbytes
    # `first` is in use (this process holds it): no room for a second entry within a bound that fits one.
    assert decoded_images(mixed_images[4:], CONFIG, max_bytes=size + 1, root=tmp_path) is None
    assert first[0].shape == (40, 53, 3)
    directory = first.directory
    del first  # no longer in use: the least recently used entry makes room
    second = decoded_images(mixed_images[4:], CONFIG, max_bytes=size + 1, root=tmp_path)
    assert second is not None and (second.directory / INDEX_FILE).is_file()
    assert not directory.exists()
    assert decoded_images(mixed_images, CONFIG, max_bytes=100, root=tmp_path) is None  # larger than the bound


def test_changed_content_or_preprocessing_is_another_entry(mixed_images, tmp_path):
    records = [record.model_copy(update={"sha256": f"{index:064x}"}) for index, record in enumerate(mixed_images)]
    key = cache_key(records, CONFIG)
    assert key == cache_key(list(records), CONFIG)
    changed = [*records[:-1], records[-1].model_copy(update={"sha256": "f" * 64})]
    assert cache_key(changed, CONFIG) != key
    assert cache_key(records, PreprocessConfig(resize_shortest_edge=48, crop_size=32)) != key
    unhashed = Path(tmp_path / "a.jpg")
    Image.fromarray(_photo(50, 40, 9)).save(unhashed)
    before = cache_key([ImageRecord(path=str(unhashed), label=0)], CONFIG)
    Image.fromarray(_photo(50, 40, 10)).save(unhashed)
    os.utime(unhashed, ns=(1, 1))
    assert cache_key([ImageRecord(path=str(unhashed), label=0)], CONFIG) != before  # no hash: size and mtime


def test_an_unreadable_image_fails_the_build_naming_it_and_leaves_nothing(mixed_images, tmp_path):
    broken = tmp_path / "images" / "broken.jpg"
    broken.parent.mkdir()
    broken.write_bytes(Path(mixed_images[0].path).read_bytes()[:200])  # the header is intact, the pixels are not
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    records = [mixed_images[1], ImageRecord(path=str(broken), label=0)]
    with pytest.raises(InvalidImageError, match="broken.jpg"):
        decoded_images(records, CONFIG, max_bytes=BIG, root=cache)
    assert [path.name for path in cache.iterdir()] == [".lock"]
    with pytest.raises(InvalidImageError, match="vanished.jpg: no such file"):
        decoded_images([ImageRecord(path=str(tmp_path / "vanished.jpg"), label=0)], CONFIG, BIG, root=cache)
