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
from har_core.dataset import DatasetManifest, check_images, scan_image_folder
from har_core.images import DECODE_ERRORS
from har_core.split import stratified_split
from har_core.synthetic import generate_synthetic_images

logger = logging.getLogger(__name__)

EXPORT_DONE_MARKER = ".export-complete"


class DatasetUnavailableError(RuntimeError):
    """The configured dataset cannot be loaded (offline, unknown id, wrong split)."""


def build_manifest(config: DataConfig) -> DatasetManifest:
    """Resolve the source to an image folder, check every image, and split it."""
    root = image_folder_for(config)
    records = scan_image_folder(root, config.labels)
    records, skipped = check_images(records, config.on_corrupt)
    train, val, test = stratified_split(records, config.split)
    logger.info("Dataset %s: %d train / %d val / %d test images", root, len(train), len(val), len(test))
    return DatasetManifest(
        labels=list(config.labels), root=str(Path(root).resolve()), train=train, val=val, test=test, skipped=skipped
    )


def image_folder_for(config: DataConfig) -> Path:
    """The `<root>/<label>/*` tree that holds the configured source's images, creating it when needed."""
    if config.source == "folder":
        return Path(config.root)
    if config.source == "synthetic":
        root = config.root or Path(config.cache_dir) / f"synthetic-{config.synthetic.seed}"
        return generate_synthetic_images(root, config.labels, config.synthetic)
    return export_hf_dataset(config.hf_dataset, config.hf_split, hf_export_root(config), config.labels)


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
