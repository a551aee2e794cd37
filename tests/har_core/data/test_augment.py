import random

import numpy as np
import pytest
from PIL import Image

from har_core.data.augment import augment
from har_core.runtime.preprocess import PreprocessConfig, preprocess

CONFIG = PreprocessConfig(resize_shortest_edge=32, crop_size=32)


def _gradient(size=(48, 40)) -> Image.Image:
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.stack([np.tile(x, (height, 1)), np.tile(x[::-1], (height, 1)), np.full((height, width), 90, np.uint8)], -1)
    return Image.fromarray(rgb, "RGB")


@pytest.mark.parametrize("level", ["light", "medium", "strong"])
def test_augmentation_changes_images_and_is_seeded(level):
    image = _gradient((64, 64))
    first = augment(image, level, random.Random(3))
    again = augment(image, level, random.Random(3))
    outputs = [preprocess(augment(image, level, random.Random(seed)), CONFIG) for seed in range(4)]
    plain = preprocess(image, CONFIG)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert any(not np.allclose(output, plain) for output in outputs)


def test_no_augmentation_leaves_the_image_alone():
    image = _gradient()
    assert np.array_equal(preprocess(augment(image, "none", random.Random(0)), CONFIG), preprocess(image, CONFIG))
