"""Scan an image tree before training: every problem at once, the split it will get, and what was ignored.

run.py calls `plan_local_data` before a pipeline starts (folder and synthetic sources), and the `load_data` step
calls `plan_image_folder` on every source, so a data problem is reported the same way in both places. Torch-free.

Layouts: flat `<root>/<label>/*` (split here, seeded and stratified) or pre-split `<root>/{train,val,test}/<label>/*`
(a missing val or test is carved from train). Labels default to those present in the data, in canonical order.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from har_core.config import DataConfig
from har_core.data.split import carve, stratified_split
from har_core.data.synthetic import generate_synthetic_images
from har_core.runtime.images import InvalidImageError, open_image
from har_core.runtime.labels import HAR_LABELS

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
SPLITS = ("train", "val", "test")
MAX_LISTED = 20  # problems and ignored files named one by one before "... and N more"
CHECK_DRAFT_SIZE = 64  # JPEG decodes at reduced scale: cheap, and still finds truncation

Layout = Literal["flat", "split"]


class DataCheckError(ValueError):
    """The image tree has problems a run cannot train around; the message lists all of them."""


@dataclass(frozen=True)
class PlannedImage:
    path: str  # absolute
    label: int  # index into DataPlan.labels
    sha256: str


@dataclass(frozen=True)
class DataPlan:
    """What a run will train and evaluate on, and what the scan noticed on the way (lines for the user)."""

    root: str
    layout: Layout
    labels: list[str]
    splits: dict[str, list[PlannedImage]]
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Listing:
    """Candidate image files per (split, label) folder, plus what the scan found wrong or ignored."""

    layout: Layout
    files: dict[tuple[str | None, str], list[Path]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def plan_local_data(config: DataConfig) -> DataPlan | None:
    """The plan for a local source (folder, synthetic; drawing synthetic images first), None for fetched ones."""
    root = local_image_folder(config)
    return None if root is None else plan_image_folder(root, config)


def local_image_folder(config: DataConfig) -> Path | None:
    """The image tree of a local source (drawing synthetic images first if needed); None for fetched sources."""
    if config.source == "folder":
        return Path(config.root)
    if config.source == "synthetic":
        root = config.root or Path(config.cache_dir) / f"synthetic-{config.synthetic.seed}"
        return generate_synthetic_images(root, config.labels or HAR_LABELS, config.synthetic)
    return None


def plan_image_folder(root: str | Path, config: DataConfig) -> DataPlan:
    """Scan and decode every image under `root` and plan the split; raise `DataCheckError` listing every problem."""
    root = Path(root)
    if not root.is_dir():
        raise DataCheckError(
            f"data.root {str(root)!r} does not exist or is not a directory; it must hold <root>/<label>/*.jpg "
            "or <root>/{train,val,test}/<label>/*.jpg."
        )
    known = list(config.labels or HAR_LABELS)
    listing = _list_tree(root, known)
    checked = _check_files([path for paths in listing.files.values() for path in paths], root)
    problems, notes = list(listing.problems), []
    bad = {path: message for path, (_, message) in checked.items() if message is not None}
    skipped = []
    if bad and config.on_corrupt == "error":
        problems.append(
            _listed(f"{len(bad)} unreadable images (fix or remove them, or set data.on_corrupt: skip)", bad.values())
        )
    elif bad:
        skipped = sorted(str(path) for path in bad)
        notes.append(_listed(f"Skipped {len(bad)} unreadable images (data.on_corrupt: skip)", bad.values()))
    good = {key: [path for path in paths if path not in bad] for key, paths in listing.files.items()}
    present = {label for (_, label), paths in good.items() if paths}
    if not present and not problems:
        problems.append("no readable images (expected <root>/<label>/*.jpg or <root>/{train,val,test}/<label>/*.jpg)")
    labels, label_note = _choose_labels(known, present, forced=config.labels is not None)
    hashes = {path: digest for path, (digest, _) in checked.items()}
    if listing.layout == "split":
        problems += _leakage(good, hashes, root)
    splits: dict[str, list[PlannedImage]] = {}
    if not problems:
        try:
            splits, split_note = _plan_splits(good, hashes, labels, config, listing.layout)
        except ValueError as error:
            problems.append(str(error))
    if problems:
        header = f"Data check of {root} found {len(problems)} problem{'s' if len(problems) > 1 else ''}:"
        raise DataCheckError("\n".join([header, *(f"  - {problem}" for problem in problems)]))
    counts = " / ".join(f"{len(splits[name])} {name}" for name in SPLITS)
    notes = [f"Data: {root} ({split_note})", label_note, f"Images: {counts}", *notes, *listing.ignored]
    return DataPlan(str(root.resolve()), listing.layout, labels, splits, skipped, [note for note in notes if note])


def _list_tree(root: Path, known: Sequence[str]) -> _Listing:
    top = _visible(root)
    folders = sorted(path for path in top if path.is_dir())
    listing = _Listing(layout="split" if (root / "train").is_dir() else "flat")
    listing.ignored += _stray_files(top, root)
    if listing.layout == "split":
        strays = [folder.name for folder in folders if folder.name not in SPLITS]
        if strays:
            listing.problems.append(f"folders next to train/ that are not splits: {strays} (expected train, val, test)")
        parents = [(folder.name, folder) for folder in folders if folder.name in SPLITS]
    else:
        parents = [(None, root)]
    unknown = []
    for split, parent in parents:
        label_folders = sorted(path for path in _visible(parent) if path.is_dir())
        if split is not None:
            listing.ignored += _stray_files(_visible(parent), root)
        for folder in label_folders:
            if folder.name not in known:
                unknown.append(str(folder.relative_to(root)))
                continue
            images = []
            for path in sorted(_visible(folder)):
                if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
                    images.append(path)
                else:
                    kind = "a folder" if path.is_dir() else "not an image file"
                    listing.ignored.append(f"Ignored: {path.relative_to(root)} ({kind})")
            if not images:
                listing.ignored.append(f"Ignored: {folder.relative_to(root)}/ (empty label folder)")
            listing.files[(split, folder.name)] = images
    if unknown:
        listing.problems.append(
            f"sub-folders that are not labels: {unknown} (labels: {', '.join(known)}); "
            "rename or remove them, or list your labels in data.labels"
        )
    if len(listing.ignored) > MAX_LISTED:
        listing.ignored = listing.ignored[:MAX_LISTED] + [f"... and {len(listing.ignored) - MAX_LISTED} more ignored"]
    return listing


def _stray_files(entries: Sequence[Path], root: Path) -> list[str]:
    return [f"Ignored: {path.relative_to(root)} (not in a label folder)" for path in sorted(entries) if path.is_file()]


def _visible(folder: Path) -> list[Path]:
    """Entries of `folder` except hidden ones (.DS_Store, the sources' marker files)."""
    return [path for path in folder.iterdir() if not path.name.startswith(".")]


def _check_files(paths: Sequence[Path], root: Path) -> dict[Path, tuple[str, str | None]]:
    """(sha256, error message or None) per file; decoding runs in threads (PIL releases the GIL)."""
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return dict(zip(paths, pool.map(lambda path: _check_file(path, root), paths), strict=True))


def _check_file(path: Path, root: Path) -> tuple[str, str | None]:
    """The file's sha256 and, if it cannot be decoded, why (the images module's message, relative to root)."""
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    try:
        open_image(data, name=str(path.relative_to(root)), draft_size=CHECK_DRAFT_SIZE)
    except InvalidImageError as error:
        return digest, str(error)
    return digest, None


def _choose_labels(known: list[str], present: set[str], forced: bool) -> tuple[list[str], str]:
    """data.labels when given; otherwise the labels that have images, in canonical order."""
    labels = known if forced else [label for label in known if label in present]
    absent = [label for label in known if label not in present]
    if forced:
        note = f"Labels: {len(labels)} from data.labels" + (f"; no images for: {', '.join(absent)}" if absent else "")
    else:
        note = f"Labels: {len(labels)} found in the data ({', '.join(labels)})"
        note += f"; absent, so not in this model: {', '.join(absent)}" if absent else ""
    return labels, note


def _leakage(files: dict[tuple[str | None, str], list[Path]], hashes: dict[Path, str], root: Path) -> list[str]:
    """Identical images (same sha256) in different splits of a pre-split tree: the test would score training data."""
    by_hash: dict[str, list[Path]] = defaultdict(list)
    for paths in files.values():
        for path in paths:
            by_hash[hashes[path]].append(path)
    leaks = [
        " = ".join(str(path.relative_to(root)) for path in paths)
        for paths in by_hash.values()
        if len({path.relative_to(root).parts[0] for path in paths}) > 1
    ]
    if not leaks:
        return []
    return [_listed(f"{len(leaks)} images appear in more than one split (leakage; keep each in one split)", leaks)]


def _plan_splits(
    files: dict[tuple[str | None, str], list[Path]],
    hashes: dict[Path, str],
    labels: list[str],
    config: DataConfig,
    layout: Layout,
) -> tuple[dict[str, list[PlannedImage]], str]:
    """Split a flat tree, or keep a pre-split tree's splits and carve what is missing from train."""
    index = {label: position for position, label in enumerate(labels)}
    found: dict[str | None, list[PlannedImage]] = defaultdict(list)
    for (split, label), paths in files.items():
        found[split] += [PlannedImage(str(path.resolve()), index[label], hashes[path]) for path in paths]
    fractions, seed = config.split, config.split.seed
    if layout == "flat" or not found["val"] and not found["test"]:
        images = found[None] if layout == "flat" else found["train"]
        parts = stratified_split(images, fractions, groups=[image.sha256 for image in images])
        where = "flat layout <root>/<label>/*" if layout == "flat" else "train/ only"
        return dict(zip(SPLITS, parts, strict=True)), f"{where}; split {_ratio(fractions)} here, seeded and stratified"
    missing = [name for name in ("val", "test") if not found[name]]
    splits = {name: found[name] for name in SPLITS}
    note = "pre-split layout <root>/{train,val,test}/<label>/*"
    if missing:
        name = missing[0]
        fraction = getattr(fractions, name) / (fractions.train + getattr(fractions, name))
        train = splits["train"]
        splits["train"], splits[name] = carve(train, fraction, seed, groups=[image.sha256 for image in train])
        note += f"; no {name}/, so {fraction:.0%} of train carved out as {name} (seed {seed}, stratified)"
    return splits, note


def _ratio(fractions) -> str:
    return "/".join(f"{getattr(fractions, name) * 100:g}" for name in SPLITS) + " train/val/test"


def _listed(title: str, items: Sequence[str] | object) -> str:
    items = list(items)
    shown = [f"\n      {item}" for item in items[:MAX_LISTED]]
    more = [f"\n      ... and {len(items) - MAX_LISTED} more"] if len(items) > MAX_LISTED else []
    return title + ":" + "".join(shown + more)
