import random

import numpy as np
import pytest
import torch
from PIL import Image

from har_core.transform import PreprocessConfig, augment, preprocess, to_rgb

CONFIG = PreprocessConfig(resize_shortest_edge=32, crop_size=32)


def _gradient(size=(48, 40)) -> Image.Image:
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.stack([np.tile(x, (height, 1)), np.tile(x[::-1], (height, 1)), np.full((height, width), 90, np.uint8)], -1)
    return Image.fromarray(rgb, "RGB")


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA", "I;16", "1"])
def test_every_image_mode_becomes_a_normalised_rgb_tensor(mode):
    image = _gradient().convert(mode)
    tensor = preprocess(image, CONFIG)
    assert tensor.shape == (3, 32, 32) and tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()
    assert image.mode == mode  # the input is not modified


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)
    palette = Image.new("P", (8, 8), 0)
    palette.info["transparency"] = 0
    assert to_rgb(palette).getpixel((0, 0)) == (255, 255, 255)


def test_resize_short_side_then_centre_crop():
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 40, 100))  # white left fifth is cropped away
    config = PreprocessConfig(resize_shortest_edge=32, crop_size=32, mean=(0, 0, 0), std=(1, 1, 1))
    tensor = preprocess(image, config)
    assert tensor.shape == (3, 32, 32)
    assert tensor.max().item() < 0.05  # only the black centre survives


def test_normalisation_uses_mean_and_std():
    config = PreprocessConfig(resize_shortest_edge=4, crop_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    tensor = preprocess(Image.new("RGB", (4, 4), (255, 0, 255)), config)
    assert torch.allclose(tensor[:, 0, 0], torch.tensor([1.0, -1.0, 1.0]))


@pytest.mark.parametrize("level", ["light", "medium", "strong"])
def test_augmentation_changes_images_and_is_seeded(level):
    image = _gradient((64, 64))
    first = augment(image, level, random.Random(3))
    again = augment(image, level, random.Random(3))
    outputs = [preprocess(augment(image, level, random.Random(seed)), CONFIG) for seed in range(4)]
    plain = preprocess(image, CONFIG)
    assert np.array_equal(np.asarray(first), np.asarray(again))
    assert any(not torch.allclose(output, plain) for output in outputs)


def test_no_augmentation_leaves_the_image_alone():
    image = _gradient()
    assert torch.equal(preprocess(augment(image, "none", random.Random(0)), CONFIG), preprocess(image, CONFIG))
