"""Image-folder manifests and the torch Dataset that reads them.

Every data source ends as a `<root>/<label>/<image>` tree; a manifest lists its images per split, so steps
pass a small JSON artifact around instead of re-reading the source.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict
from torch.utils.data import Dataset

from har_core.data.augment import AugmentationLevel, augment
from har_core.runtime.images import open_image
from har_core.runtime.preprocess import PreprocessConfig, centre_crop, crop_array, normalize

if TYPE_CHECKING:
    from har_core.data.decoded_cache import DecodedImages

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})


class ImageRecord(BaseModel):
    """One image: its path (relative to the manifest's root once in a manifest), label index and content hash."""

    model_config = ConfigDict(frozen=True)

    path: str
    label: int
    sha256: str | None = None


class DatasetManifest(BaseModel):
    """Labels plus the images of each split, with what the data *is*: a sha256 per file and the source's revision.

    Record paths are relative to `root`, the folder that holds the images on the machine that reads them: the
    artifact store carries the images between steps and sets `root` where it unpacked them (har_zenml.materializers).
    """

    model_config = ConfigDict(frozen=True)

    labels: list[str]
    root: str
    train: list[ImageRecord]
    val: list[ImageRecord]
    test: list[ImageRecord]
    skipped: list[str] = []
    source: str = ""
    revision: str = ""

    def split(self, name: Literal["train", "val", "test"]) -> list[ImageRecord]:
        """The split's records with paths resolved against `root`, ready to open."""
        root = Path(self.root)
        return [record.model_copy(update={"path": str(root / record.path)}) for record in getattr(self, name)]

    def all_records(self) -> list[ImageRecord]:
        """Every record of every split as stored (relative paths)."""
        return [*self.train, *self.val, *self.test]

    def fingerprint(self) -> str:
        """sha256 over labels, splits, relative paths and file hashes: equal exactly when the data is equal.

        The revision and the machine-specific `root` are left out, so an unchanged dataset reached through
        another revision or folder still hits the cache, and any changed byte misses it.
        """
        content = self.model_dump(mode="json", include={"labels", "train", "val", "test"})
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    def version_label(self) -> str:
        """The dataset's version in one line: its content fingerprint, after the source's revision (DVC tag, HF
        commit, synthetic settings) when it has one (the promotion record's `data_version`)."""
        fingerprint = "sha256:" + self.fingerprint()[:16]
        return f"{self.revision} {fingerprint}" if self.revision else fingerprint

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Images per label in each split, for logs and dashboards."""
        counts = {}
        for name in ("train", "val", "test"):
            per_label = Counter(record.label for record in getattr(self, name))
            counts[name] = {label: per_label.get(index, 0) for index, label in enumerate(self.labels)}
        return counts


def load_image(path: str | Path) -> Image.Image:
    """Decode an image fully, raising `InvalidImageError` that names the file when it cannot be read."""
    return open_image(path)


class ImageClassificationDataset(Dataset):
    """(pixel_values, label) pairs; augmentation is seeded by (seed, epoch, index) so runs are repeatable.

    With `decoded` (the records' images decoded once, `har_core.data.decoded_cache`), no file is read: the stored
    resized image is cropped (equal to a full decode's crop) or augmented and then resized as a file would be.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        preprocess_config: PreprocessConfig,
        augmentation: AugmentationLevel = "none",
        seed: int = 0,
        decoded: DecodedImages | None = None,
    ) -> None:
        if decoded is not None and len(decoded) != len(records):
            raise ValueError(f"{len(decoded)} decoded images for {len(records)} records: not the same data.")
        self.records = list(records)
        self.preprocess_config = preprocess_config
        self.augmentation = augmentation
        self.seed = seed
        self.decoded = decoded
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        record = self.records[index]
        config = self.preprocess_config
        if self.decoded is not None and self.augmentation == "none":
            crop = crop_array(self.decoded[index], config)
        else:
            image = load_image(record.path) if self.decoded is None else Image.fromarray(self.decoded[index])
            if self.augmentation != "none":
                rng = random.Random(f"{self.seed}-{self.epoch}-{index}")
                image = augment(image, self.augmentation, rng)
            crop = centre_crop(image, config)
        return torch.from_numpy(normalize(crop, config)), record.label
