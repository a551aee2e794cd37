"""Training-time augmentation: random perturbations of an RGB image before the shared preprocessing."""

from __future__ import annotations

import random
from typing import Literal

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from har_core.runtime.preprocess import to_rgb

AugmentationLevel = Literal["none", "light", "medium", "strong"]

_AUGMENTATIONS: dict[str, dict[str, float]] = {
    # min_crop_area: random-resized-crop lower bound; jitter: colour jitter strength; rotate: max degrees.
    "light": {"min_crop_area": 0.8, "jitter": 0.0, "rotate": 0.0, "grayscale": 0.0},
    "medium": {"min_crop_area": 0.6, "jitter": 0.2, "rotate": 10.0, "grayscale": 0.0},
    "strong": {"min_crop_area": 0.4, "jitter": 0.4, "rotate": 20.0, "grayscale": 0.1},
}


def augment(image: Image.Image, level: AugmentationLevel, rng: random.Random) -> Image.Image:
    """A randomly perturbed RGB copy of `image` (flip, resized crop, colour jitter, rotation by level)."""
    image = to_rgb(image)
    if level == "none":
        return image
    params = _AUGMENTATIONS[level]
    if rng.random() < 0.5:
        image = ImageOps.mirror(image)
    image = _random_resized_crop(image, params["min_crop_area"], rng)
    if params["rotate"]:
        image = image.rotate(rng.uniform(-params["rotate"], params["rotate"]), Image.Resampling.BILINEAR)
    if params["jitter"]:
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            image = enhancer(image).enhance(rng.uniform(1 - params["jitter"], 1 + params["jitter"]))
    if rng.random() < params["grayscale"]:
        image = ImageOps.grayscale(image).convert("RGB")
    return image


def _random_resized_crop(image: Image.Image, min_area: float, rng: random.Random) -> Image.Image:
    """Crop a random region covering [min_area, 1] of the image with aspect ratio in [3/4, 4/3]."""
    width, height = image.size
    area = rng.uniform(min_area, 1.0) * width * height
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    crop_w = min(width, max(1, round((area * aspect) ** 0.5)))
    crop_h = min(height, max(1, round((area / aspect) ** 0.5)))
    left = rng.randint(0, width - crop_w)
    top = rng.randint(0, height - crop_h)
    return image.crop((left, top, left + crop_w, top + crop_h))
