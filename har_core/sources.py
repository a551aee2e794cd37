"""Turn a `DataConfig` into a split manifest: HF dataset, local image folder, or synthetic drawings."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from har_core.config import DataConfig
from har_core.data_check import DataPlan, local_image_folder, plan_image_folder
from har_core.dataset import DatasetManifest, ImageRecord
from har_core.images import DECODE_ERRORS
from har_core.labels import HAR_LABELS

logger = logging.getLogger(__name__)

EXPORT_DONE_MARKER = ".export-complete"


class DatasetUnavailableError(RuntimeError):
    """The configured dataset cannot be loaded (offline, unknown id, wrong split)."""


def build_manifest(config: DataConfig) -> DatasetManifest:
    """Resolve the source to an image folder, check every image, and split it (see `har_core.data_check`)."""
    plan = plan_image_folder(image_folder_for(config), config)
    for note in plan.notes:
        logger.info(note)
    return manifest_from_plan(plan)


def manifest_from_plan(plan: DataPlan) -> DatasetManifest:
    splits = {
        name: [ImageRecord(path=image.path, label=image.label) for image in images]
        for name, images in plan.splits.items()
    }
    return DatasetManifest(labels=plan.labels, root=plan.root, skipped=plan.skipped, **splits)


def image_folder_for(config: DataConfig) -> Path:
    """The `<root>/<label>/*` tree that holds the configured source's images, creating it when needed."""
    local = local_image_folder(config)
    if local is not None:
        return local
    return export_hf_dataset(config.hf_dataset, config.hf_split, hf_export_root(config), config.labels or HAR_LABELS)


def hf_export_root(config: DataConfig) -> Path:
    """Where the Hugging Face source's images are (or will be) exported."""
    return Path(config.root or Path(config.cache_dir) / _slug(f"{config.hf_dataset}-{config.hf_split}"))


def export_hf_dataset(dataset_id: str, split: str, root: Path, labels: Sequence[str]) -> Path:
    """Write a Hugging Face image-classification split to `<root>/<label>/<index>.jpg` once."""
    root = Path(root)
    if (root / EXPORT_DONE_MARKER).is_file():
        return root
    import datasets  # deferred: importing `datasets` costs seconds and only this source needs it

    try:
        dataset = datasets.load_dataset(dataset_id, split=split)
    except Exception as error:  # the hub client raises many types for one cause: it cannot get the data
        raise DatasetUnavailableError(
            f"Could not load Hugging Face dataset {dataset_id!r} (split {split!r}): {error}\n"
            "If this machine is offline, use the offline quick path (configs/quickstart.yaml, synthetic images) "
            "or point data.source: folder and data.root at a local <root>/<label>/*.jpg tree."
        ) from error
    label_names = dataset.features["labels"].names
    if list(label_names) != list(labels):
        raise ValueError(f"Dataset {dataset_id!r} labels {label_names} differ from data.labels {list(labels)}.")
    for label in labels:
        (root / label).mkdir(parents=True, exist_ok=True)
    # Write the stored bytes as they are: no JPEG re-encoding, so no quality loss and no decode cost here.
    encoded = dataset.cast_column("image", datasets.Image(decode=False))
    for index, row in enumerate(tqdm(encoded, desc=f"Exporting {dataset_id}", unit="img")):
        data = row["image"]["bytes"] or Path(row["image"]["path"]).read_bytes()
        suffix = _image_suffix(data)
        (root / label_names[row["labels"]] / f"{index:06d}{suffix}").write_bytes(data)
    (root / EXPORT_DONE_MARKER).touch()
    return root


def _image_suffix(data: bytes) -> str:
    """File suffix for encoded image bytes; undecodable bytes get `.jpg` so the image check reports them."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp", "GIF": ".gif"}.get(
                image.format, ".jpg"
            )
    except DECODE_ERRORS:
        return ".jpg"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)
