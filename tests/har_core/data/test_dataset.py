from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from har_core.config import DataConfig, SplitConfig, SyntheticDataConfig
from har_core.data.dataset import ImageRecord, load_image
from har_core.data.sources import build_manifest
from har_core.data.split import stratified_split
from har_core.data.synthetic import generate_synthetic_images
from har_core.runtime.images import InvalidImageError
from har_core.runtime.labels import HAR_LABELS
from tests.har_core.data.folders import image_records


def _folder(root: Path, per_label: dict[str, int]) -> Path:
    for label, count in per_label.items():
        (root / label).mkdir(parents=True)
        for index in range(count):
            Image.new("RGB", (20, 20), (index * 10, 0, 0)).save(root / label / f"{index}.jpg")
    return root


def test_corrupt_jpeg_error_names_the_file(tmp_path):
    root = _folder(tmp_path, {"calling": 2})
    good = root / "calling" / "0.jpg"
    truncated = root / "calling" / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:100])
    garbage = root / "calling" / "garbage.jpg"
    garbage.write_bytes(b"not an image at all")
    with pytest.raises(InvalidImageError, match="garbage.jpg"):
        load_image(garbage)
    with pytest.raises(InvalidImageError, match="truncated.jpg"):
        load_image(truncated)


def test_stratified_split_keeps_shares_and_repeats():
    records = [ImageRecord(path=f"{label}-{i}", label=label) for label in range(3) for i in range(20)]
    config = SplitConfig()
    train, val, test = stratified_split(records, config)
    assert (len(train), len(val), len(test)) == (36, 9, 15)
    assert Counter(record.label for record in train) == {0: 12, 1: 12, 2: 12}
    assert set(map(str, train)).isdisjoint(map(str, test))
    assert stratified_split(records, config) == (train, val, test)
    assert stratified_split(records, SplitConfig(seed=7))[0] != train


def test_split_with_too_few_images_says_what_to_do():
    records = [ImageRecord(path=f"{label}", label=label) for label in range(3)]
    with pytest.raises(ValueError, match="add images"):
        stratified_split(records, SplitConfig())


def test_synthetic_images_are_drawn_once_per_config(tmp_path):
    config = SyntheticDataConfig(images_per_class=6, image_size=32)
    root = generate_synthetic_images(tmp_path, HAR_LABELS[:3], config)
    first = (root / "calling" / "00000.jpg").stat().st_mtime_ns
    generate_synthetic_images(tmp_path, HAR_LABELS[:3], config)
    assert (root / "calling" / "00000.jpg").stat().st_mtime_ns == first
    assert sorted(path.name for path in root.iterdir() if path.is_dir()) == ["calling", "clapping", "cycling"]
    fewer = generate_synthetic_images(tmp_path, HAR_LABELS[:2], SyntheticDataConfig(images_per_class=5, image_size=16))
    drawn = sorted(str(path.relative_to(fewer)) for path in fewer.rglob("*.jpg"))
    assert drawn == [f"{label}/{index:05d}.jpg" for label in HAR_LABELS[:2] for index in range(5)]


def test_a_seed_draws_the_same_bytes_on_every_redraw(tmp_path):
    def drawn_bytes(folder: str, seed: int) -> dict[str, bytes]:
        root = generate_synthetic_images(
            tmp_path / folder, HAR_LABELS[:3], SyntheticDataConfig(image_size=24, seed=seed)
        )
        return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*.jpg"))}

    first = drawn_bytes("first", seed=0)
    assert drawn_bytes("again", seed=0) == first  # a redraw hits ZenML's cache (tests/pipelines/test_data_fingerprints)
    other = drawn_bytes("other", seed=1)
    assert other.keys() == first.keys() and all(other[name] != first[name] for name in first)


def test_synthetic_source_refuses_a_folder_it_did_not_draw(tmp_path):
    (tmp_path / "my-photos").mkdir()
    (tmp_path / "my-photos" / "keep.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="not drawn by the synthetic source"):
        generate_synthetic_images(tmp_path, HAR_LABELS, SyntheticDataConfig(images_per_class=4))
    assert (tmp_path / "my-photos" / "keep.jpg").exists()


def test_manifest_from_synthetic_source(tmp_path):
    config = DataConfig(
        source="synthetic", cache_dir=tmp_path, synthetic=SyntheticDataConfig(images_per_class=8, image_size=32)
    )
    manifest = build_manifest(config)
    assert manifest.labels == list(HAR_LABELS)
    assert len(manifest.train) + len(manifest.val) + len(manifest.test) == 15 * 8
    assert all(count > 0 for count in manifest.class_counts()["train"].values())


def test_manifest_from_missing_folder_is_a_clear_error(tmp_path):
    from har_core.data.scan import DataCheckError

    with pytest.raises(DataCheckError, match="does not exist"):
        build_manifest(DataConfig(source="folder", root=tmp_path / "missing"))


def test_dataset_applies_augmentation_per_epoch_and_repeats_it(synthetic_root):
    from har_core.data.dataset import ImageClassificationDataset
    from har_core.runtime.preprocess import PreprocessConfig

    records = image_records(synthetic_root, HAR_LABELS)[:2]
    config = PreprocessConfig(resize_shortest_edge=32, crop_size=32)
    plain = ImageClassificationDataset(records, config)
    augmented = ImageClassificationDataset(records, config, augmentation="medium", seed=1)
    augmented.set_epoch(1)
    epoch_one = augmented[0][0]
    augmented.set_epoch(2)
    epoch_two = augmented[0][0]
    assert not torch.equal(epoch_one, plain[0][0]) and not torch.equal(epoch_one, epoch_two)
    augmented.set_epoch(1)
    assert torch.equal(augmented[0][0], epoch_one)
    assert augmented[0][1] == records[0].label


def test_oversized_images_are_refused_before_decoding(tmp_path, monkeypatch):
    import har_core.runtime.images as images_module

    root = _folder(tmp_path, {"calling": 2})
    Image.new("RGB", (300, 300)).save(root / "calling" / "huge.jpg")
    monkeypatch.setattr(images_module, "MAX_IMAGE_PIXELS", 50_000)
    with pytest.raises(InvalidImageError, match="huge.jpg.*pixel limit"):
        load_image(root / "calling" / "huge.jpg")
