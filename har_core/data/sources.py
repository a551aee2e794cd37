"""Turn a `DataConfig` into a split manifest: HF dataset, local image folder, or synthetic drawings."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from huggingface_hub import HfApi
from huggingface_hub import constants as hub_constants
from huggingface_hub.file_download import repo_folder_name
from PIL import Image
from tqdm.auto import tqdm

from har_core.config import DataConfig, SyntheticDataConfig
from har_core.data.dataset import DatasetManifest, ImageRecord
from har_core.data.scan import DataPlan, local_image_folder, plan_image_folder
from har_core.hub_probe import PROBE_TIMEOUT_S
from har_core.runtime.hashing import file_sha256
from har_core.runtime.images import DECODE_ERRORS
from har_core.runtime.labels import HAR_LABELS

logger = logging.getLogger(__name__)

EXPORT_DONE_MARKER = ".export-complete"
OFFLINE_ADVICE = (
    "If this machine is offline, use the offline quick path (configs/quickstart.yaml, synthetic images) "
    "or point data.source: folder and data.root at a local <root>/<label>/*.jpg tree."
)
_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")


class DatasetUnavailableError(RuntimeError):
    """The configured dataset cannot be loaded (offline, unknown id, wrong split)."""


def build_manifest(config: DataConfig) -> DatasetManifest:
    """Resolve the source to an image folder, check and fingerprint every image, and split it."""
    root, revision = image_folder_for(config)
    return manifest_for_folder(root, config, source=config.source, revision=revision)


def manifest_for_folder(root: Path, config: DataConfig, source: str, revision: str | None) -> DatasetManifest:
    """Scan, check, hash and split the images under `root` (see `har_core.data.scan`); `revision=None` means
    "the content itself"."""
    plan = plan_image_folder(root, config)
    for note in plan.notes:
        logger.info(note)
    return manifest_from_plan(plan, source, revision)


def manifest_from_plan(plan: DataPlan, source: str = "", revision: str | None = None) -> DatasetManifest:
    """The manifest of a checked plan: paths relative to its root, a sha256 per file, the source's revision."""
    root = Path(plan.root)
    splits = {
        name: [
            ImageRecord(
                path=Path(image.path).resolve().relative_to(root).as_posix(), label=image.label, sha256=image.sha256
            )
            for image in images
        ]
        for name, images in plan.splits.items()
    }
    manifest = DatasetManifest(
        labels=plan.labels,
        root=str(root),
        skipped=[_relative(path, root) for path in plan.skipped],
        source=source,
        revision=revision or "",
        **splits,
    )
    if revision is None:  # a plain folder has no version of its own: its content is its revision
        manifest = manifest.model_copy(update={"revision": f"content:{manifest.fingerprint()[:16]}"})
    return manifest


def _relative(path: str, root: Path) -> str:
    return Path(path).resolve().relative_to(root).as_posix()


def image_folder_for(config: DataConfig) -> tuple[Path, str | None]:
    """The image tree that holds the configured source's images (created when needed) and the source's revision
    (None when only the content identifies it)."""
    local = local_image_folder(config)
    if config.source == "folder":
        return local, None
    if config.source == "synthetic":
        return local, synthetic_revision(config.labels or HAR_LABELS, config.synthetic)
    if config.source != "huggingface":
        raise ValueError(f"data.source {config.source!r} is not a folder source; its step loads it (see steps/).")
    labels = config.labels or HAR_LABELS
    revision = hf_dataset_revision(config.hf_dataset, config.hf_revision)
    root = hf_export_root(config, revision)
    export_hf_dataset(config.hf_dataset, config.hf_split, root, labels, revision=revision)
    return root, f"hf:{config.hf_dataset}@{revision}"


def synthetic_revision(labels: Sequence[str], synthetic: SyntheticDataConfig) -> str:
    """The drawing settings identify synthetic data: same settings, same images."""
    signature = json.dumps({"labels": list(labels), **synthetic.model_dump()}, sort_keys=True)
    return f"synthetic:{hashlib.sha256(signature.encode()).hexdigest()[:16]}"


def hf_export_root(config: DataConfig, revision: str) -> Path:
    """Where the Hugging Face source's images at `revision` are (or will be) exported: one folder per revision."""
    if config.root is not None:
        return Path(config.root)
    return Path(config.cache_dir) / _slug(f"{config.hf_dataset}-{config.hf_split}@{revision[:16]}")


def hf_dataset_revision(dataset_id: str, revision: str = "main") -> str:
    """The commit the Hub serves for `revision`, or, for a local dataset directory, a hash of its files.

    Offline, a branch or tag resolves through the local HF cache's `refs/` (where `datasets` left it).
    """
    local = Path(dataset_id)
    if local.is_dir():
        return f"local-{directory_sha256(local)[:16]}"
    if _COMMIT_SHA.fullmatch(revision):
        return revision
    cached_ref = (
        Path(hub_constants.HF_HUB_CACHE) / repo_folder_name(repo_id=dataset_id, repo_type="dataset") / "refs" / revision
    )
    error: Exception | None = None
    if not hub_constants.HF_HUB_OFFLINE:
        try:
            return HfApi().dataset_info(dataset_id, revision=revision, timeout=PROBE_TIMEOUT_S).sha
        except Exception as exc:  # offline, unknown id or revision: fall back to the cache, else explain
            error = exc
    if cached_ref.is_file():
        return cached_ref.read_text().strip()
    raise DatasetUnavailableError(
        f"Cannot resolve revision {revision!r} of Hugging Face dataset {dataset_id!r}: "
        f"{error or 'HF_HUB_OFFLINE is set'} and it is not in the local HF cache.\n{OFFLINE_ADVICE}"
    )


def directory_sha256(root: Path) -> str:
    """sha256 over the relative paths and contents of every file under `root`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + file_sha256(path).encode())
    return digest.hexdigest()


def export_hf_dataset(
    dataset_id: str, split: str, root: Path, labels: Sequence[str], revision: str | None = None
) -> Path:
    """Write a Hugging Face image-classification split at `revision` to `<root>/<label>/<index>.<ext>` once.

    The completion marker records the revision: an export of another revision is redone, never reused.
    """
    root = Path(root)
    revision = revision or hf_dataset_revision(dataset_id)
    marker = root / EXPORT_DONE_MARKER
    if marker.is_file() and marker.read_text().strip() == revision:
        return root
    import datasets  # deferred: importing `datasets` costs seconds and only this source needs it

    try:
        hub_revision = None if Path(dataset_id).is_dir() else revision
        dataset = datasets.load_dataset(dataset_id, split=split, revision=hub_revision)
    except Exception as error:  # the hub client raises many types for one cause: it cannot get the data
        raise DatasetUnavailableError(
            f"Could not load Hugging Face dataset {dataset_id!r} (split {split!r}): {error}\n{OFFLINE_ADVICE}"
        ) from error
    label_names = dataset.features["labels"].names
    if list(label_names) != list(labels):
        raise ValueError(f"Dataset {dataset_id!r} labels {label_names} differ from data.labels {list(labels)}.")
    marker.unlink(missing_ok=True)
    for label in labels:  # a stale export of another revision must not leak files into this one
        shutil.rmtree(root / label, ignore_errors=True)
        (root / label).mkdir(parents=True)
    # Write the stored bytes as they are: no JPEG re-encoding, so no quality loss and no decode cost here.
    encoded = dataset.cast_column("image", datasets.Image(decode=False))
    for index, row in enumerate(tqdm(encoded, desc=f"Exporting {dataset_id}", unit="img")):
        data = row["image"]["bytes"] or Path(row["image"]["path"]).read_bytes()
        suffix = _image_suffix(data)
        (root / label_names[row["labels"]] / f"{index:06d}{suffix}").write_bytes(data)
    marker.write_text(revision)
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
