"""Images no action model was trained on, generated here, for measuring the out-of-distribution score.

Two kinds, both drawn from a seed (nothing is downloaded): pure noise, and synthetic shapes of the classes the
model does not have (`har_core.data.synthetic` draws one shape-and-colour per label; the combinations after the
model's labels are unseen). Real photos of other actions are measured by hand (benchmarks/serving/ood_bench.py).
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image

from har_core.data.synthetic import COLOURS, SHAPES, draw_class_image

NOISE = "noise"
UNSEEN_SHAPES = "unseen_shapes"


def noise_images(count: int, size: int, seed: int) -> list[Image.Image]:
    """Uniform RGB noise: no object, no scene."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), "RGB") for _ in range(count)]


def unseen_shape_images(count: int, size: int, known_classes: int, seed: int) -> list[Image.Image]:
    """Synthetic images of the shape-and-colour classes after the first `known_classes` (none when all are used)."""
    unseen = range(known_classes, len(SHAPES) * len(COLOURS))
    if not unseen:
        return []
    rng = random.Random(seed)
    return [draw_class_image(unseen[index % len(unseen)], size, rng) for index in range(count)]


def ood_sets(count: int, size: int, known_classes: int, seed: int = 0) -> dict[str, list[Image.Image]]:
    """Every generated out-of-distribution set that is not empty, by name."""
    sets = {
        NOISE: noise_images(count, size, seed),
        UNSEEN_SHAPES: unseen_shape_images(count, size, known_classes, seed),
    }
    return {name: images for name, images in sets.items() if images}
