"""Synthetic action images: each label gets its own shape and colour, drawn at random places and sizes.

They stand in for real photos offline: a model can learn them (so training is testable), and nothing is
downloaded or copied from elsewhere.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm.auto import tqdm

from har_core.config import SyntheticDataConfig

logger = logging.getLogger(__name__)

SHAPES = ("circle", "square", "triangle", "cross", "stripes")
COLOURS = ((220, 40, 40), (40, 180, 60), (50, 80, 220), (230, 200, 40), (170, 60, 200))
MARKER_FILE = ".synthetic.json"


def generate_synthetic_images(root: str | Path, labels: Sequence[str], config: SyntheticDataConfig) -> Path:
    """Draw `<root>/<label>/<n>.jpg`; reuses an existing tree drawn with the same labels and config."""
    root = Path(root)
    signature = {"labels": list(labels), **config.model_dump()}
    marker = root / MARKER_FILE
    if marker.is_file():
        previous = json.loads(marker.read_text())
        if previous == signature:
            return root
        for label in previous["labels"]:  # drawn by an older config: stale images must not leak into the split
            shutil.rmtree(root / label, ignore_errors=True)
        marker.unlink()
    elif root.is_dir() and any(root.iterdir()):
        raise ValueError(f"{str(root)!r} is not empty and was not drawn by the synthetic source; use an empty folder.")
    if len(labels) > len(SHAPES) * len(COLOURS):
        raise ValueError(f"Synthetic data supports at most {len(SHAPES) * len(COLOURS)} labels.")
    rng = random.Random(config.seed)
    total = len(labels) * config.images_per_class
    with tqdm(total=total, desc="Drawing synthetic images", unit="img", leave=False) as progress:
        for index, label in enumerate(labels):
            folder = root / label
            folder.mkdir(parents=True, exist_ok=True)
            for number in range(config.images_per_class):
                draw_class_image(index, config.image_size, rng).save(folder / f"{number:05d}.jpg", quality=92)
                progress.update()
    marker.write_text(json.dumps(signature))
    logger.info("Drew %d synthetic images under %s", total, root)
    return root


def draw_class_image(class_index: int, size: int, rng: random.Random) -> Image.Image:
    """One image of class `class_index`: its shape in its colour over a noisy background."""
    shape = SHAPES[class_index % len(SHAPES)]
    colour = _jitter(COLOURS[class_index // len(SHAPES)], rng)
    background = tuple(rng.randint(0, 255) for _ in range(3))
    image = _seeded_noise(size, rng.uniform(10, 40), rng).convert("RGB")
    image = Image.blend(image, Image.new("RGB", (size, size), background), 0.6)
    extent = rng.uniform(0.45, 0.75) * size
    left = rng.uniform(0, size - extent)
    top = rng.uniform(0, size - extent)
    _draw_shape(ImageDraw.Draw(image), shape, (left, top, left + extent, top + extent), colour)
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))


def _seeded_noise(size: int, sigma: float, rng: random.Random) -> Image.Image:
    """Grey Gaussian noise around 128 drawn from `rng`: `Image.effect_noise` uses C's unseeded generator, so the same
    seed drew different bytes on every redraw (and a redrawn tree missed ZenML's cache)."""
    noise = np.random.default_rng(rng.getrandbits(64)).normal(128.0, sigma, (size, size))
    return Image.fromarray(np.clip(np.rint(noise), 0, 255).astype(np.uint8), mode="L")


def _jitter(colour: tuple[int, int, int], rng: random.Random) -> tuple[int, ...]:
    return tuple(min(255, max(0, channel + rng.randint(-25, 25))) for channel in colour)


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, box: tuple[float, ...], colour: tuple[int, ...]) -> None:
    left, top, right, bottom = box
    width = right - left
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(left + width / 2, top), (right, bottom), (left, bottom)], fill=colour)
    elif shape == "cross":
        bar = width / 3
        draw.rectangle((left + bar, top, right - bar, bottom), fill=colour)
        draw.rectangle((left, top + bar, right, bottom - bar), fill=colour)
    else:  # stripes
        stripe = width / 7
        for row in range(0, 7, 2):
            draw.rectangle((left, top + row * stripe, right, top + (row + 1) * stripe), fill=colour)
