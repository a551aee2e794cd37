"""The pre-run data scan on real files: every problem at once, labels and layouts, what is ignored, leakage."""

import struct
import zlib
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from har_core.config import DataConfig, SplitConfig
from har_core.data.scan import MAX_LISTED, DataCheckError, plan_image_folder
from har_core.runtime.images import MAX_IMAGE_PIXELS
from har_core.runtime.labels import HAR_LABELS


def write_images(folder: Path, count: int, start: int = 0) -> list[Path]:
    """`count` distinct small JPEGs (distinct content, so no two share a hash)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(start, start + count):
        path = folder / f"{index:03d}.jpg"
        Image.new("RGB", (16, 16), (index % 256, (index * 7) % 256, len(folder.name) * 9 % 256)).save(path)
        paths.append(path)
    return paths


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims `width`x`height` pixels (a decompression bomb's shape) without the pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)))
    return path


def flat_tree(root: Path, labels: dict[str, int]) -> Path:
    for label, count in labels.items():
        write_images(root / label, count)
    return root


def folder_config(root: Path, **overrides) -> DataConfig:
    return DataConfig(source="folder", root=root, **overrides)


def test_labels_default_to_those_present_in_canonical_order(tmp_path):
    root = flat_tree(tmp_path, {"running": 8, "calling": 8, "texting": 8})
    plan = plan_image_folder(root, folder_config(root))
    assert plan.labels == ["calling", "running", "texting"] and plan.layout == "flat"
    assert Counter(image.label for image in plan.splits["train"] + plan.splits["val"] + plan.splits["test"]) == {
        0: 8,
        1: 8,
        2: 8,
    }
    absent_note = next(note for note in plan.notes if note.startswith("Labels:"))
    assert "3 found in the data" in absent_note and "absent, so not in this model: clapping, cycling" in absent_note
    assert any("flat layout" in note for note in plan.notes)


def test_data_labels_forces_the_label_set(tmp_path):
    root = flat_tree(tmp_path, {"running": 8, "calling": 8})
    plan = plan_image_folder(root, folder_config(root, labels=HAR_LABELS))
    assert plan.labels == list(HAR_LABELS)
    assert any("no images for: clapping" in note for note in plan.notes)


def test_every_unreadable_file_is_named_up_to_the_cap_with_the_total(tmp_path):
    root = flat_tree(tmp_path, {"calling": 8, "running": 8})
    (root / "calling" / "zero.jpg").write_bytes(b"")
    (root / "running" / "text.png").write_text("not a png")
    good = (root / "calling" / "000.jpg").read_bytes()
    (root / "running" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    for index in range(MAX_LISTED):
        (root / "running" / f"zz-junk{index:02d}.jpg").write_bytes(b"junk")
    (root / "juggling").mkdir()
    with pytest.raises(DataCheckError) as caught:
        plan_image_folder(root, folder_config(root))
    message = str(caught.value)
    assert "found 2 problems" in message and "juggling" in message
    assert f"{MAX_LISTED + 3} unreadable images" in message and "... and 3 more" in message
    assert "calling/zero.jpg: the file is empty (0 bytes)." in message
    assert (
        "running/text.png: not a readable image (no image format recognised)" in message
        and "running/truncated.jpg" in message
    )


def test_unreadable_files_are_skipped_and_said_when_asked(tmp_path):
    root = flat_tree(tmp_path, {"calling": 8, "running": 8})
    (root / "calling" / "zero.jpg").write_bytes(b"")
    plan = plan_image_folder(root, folder_config(root, on_corrupt="skip"))
    assert plan.skipped == [str(root / "calling" / "zero.jpg")]
    assert any(note.startswith("Skipped 1 unreadable images") for note in plan.notes)
    assert sum(len(images) for images in plan.splits.values()) == 16


def test_an_oversized_image_gets_the_one_pixel_limit_message(tmp_path):
    root = flat_tree(tmp_path, {"calling": 8})
    header_only_png(root / "calling" / "bomb.png", 20_000, 20_000)  # 400 Mpx: above PIL's own refusal threshold
    with pytest.raises(DataCheckError) as caught:
        plan_image_folder(root, folder_config(root))
    assert f"calling/bomb.png: 20000x20000 is 400,000,000 pixels, over the {MAX_IMAGE_PIXELS:,} pixel limit." in str(
        caught.value
    )
    assert "decompression" not in str(caught.value).lower()


def test_non_images_and_empty_label_folders_are_ignored_with_one_line_each(tmp_path):
    root = flat_tree(tmp_path, {"calling": 8, "running": 8})
    (root / "calling" / "notes.txt").write_text("shot in 2019")
    (root / "sleeping").mkdir()
    (root / "README.md").write_text("my photos")
    (root / ".DS_Store").write_bytes(b"\0")
    plan = plan_image_folder(root, folder_config(root))
    ignored = [note for note in plan.notes if note.startswith("Ignored")]
    assert ignored == [
        "Ignored: README.md (not in a label folder)",
        "Ignored: calling/notes.txt (not an image file)",
        "Ignored: sleeping/ (empty label folder)",
    ]
    assert plan.labels == ["calling", "running"]


def test_an_empty_root_is_a_problem(tmp_path):
    with pytest.raises(DataCheckError, match="no readable images"):
        plan_image_folder(tmp_path, folder_config(tmp_path))


def test_pre_split_layout_keeps_its_splits(tmp_path):
    for split, count in {"train": 6, "val": 2, "test": 3}.items():
        for offset, label in enumerate(("calling", "running")):
            write_images(tmp_path / split / label, count, start=100 * offset + 10 * len(split))
    plan = plan_image_folder(tmp_path, folder_config(tmp_path))
    assert plan.layout == "split" and plan.labels == ["calling", "running"]
    assert {name: len(images) for name, images in plan.splits.items()} == {"train": 12, "val": 4, "test": 6}
    assert all("/test/" in image.path for image in plan.splits["test"])
    assert any("pre-split layout" in note for note in plan.notes)


def test_missing_val_is_carved_from_train_seeded_and_stratified(tmp_path):
    for offset, label in enumerate(("calling", "running")):
        write_images(tmp_path / "train" / label, 20, start=100 * offset)
        write_images(tmp_path / "test" / label, 5, start=100 * offset + 50)
    config = folder_config(tmp_path, split=SplitConfig(train=0.6, val=0.2, test=0.2, seed=3))
    plan = plan_image_folder(tmp_path, config)
    assert Counter(image.label for image in plan.splits["val"]) == {0: 5, 1: 5}  # 0.2 / (0.6 + 0.2) of 20
    assert len(plan.splits["train"]) == 30 and all("/train/" in image.path for image in plan.splits["val"])
    assert plan_image_folder(tmp_path, config).splits == plan.splits
    other = plan_image_folder(tmp_path, folder_config(tmp_path, split=SplitConfig(train=0.6, val=0.2, test=0.2)))
    assert other.splits["val"] != plan.splits["val"]
    assert any("no val/, so 25% of train carved out as val" in note for note in plan.notes)


def test_identical_images_in_different_splits_are_leakage(tmp_path):
    for split in ("train", "val", "test"):
        write_images(tmp_path / split / "calling", 4, start=10 * len(split))
    leaked = tmp_path / "test" / "calling" / "copy.jpg"
    leaked.write_bytes((tmp_path / "train" / "calling" / "050.jpg").read_bytes())
    with pytest.raises(DataCheckError) as caught:
        plan_image_folder(tmp_path, folder_config(tmp_path))
    assert "1 images appear in more than one split (leakage" in str(caught.value)
    assert "test/calling/copy.jpg = train/calling/050.jpg" in str(caught.value)


def test_identical_images_in_a_flat_tree_stay_in_one_split(tmp_path):
    root = flat_tree(tmp_path, {"calling": 12, "running": 12})
    for copy in range(3):
        (root / "calling" / f"copy{copy}.jpg").write_bytes((root / "calling" / "000.jpg").read_bytes())
    plan = plan_image_folder(root, folder_config(root))
    homes = {name for name, images in plan.splits.items() for image in images if "000.jpg" in image.path}
    copies = {name for name, images in plan.splits.items() for image in images if "copy" in image.path}
    assert len(homes) == 1 and copies == homes
