import numpy as np
import pytest
from PIL import Image
from transformers import CLIPImageProcessor

from har_core.runtime.preprocess import (
    PreprocessConfig,
    centre_crop,
    normalize,
    preprocess,
    preprocess_batch,
    to_rgb,
)

CONFIG = PreprocessConfig(resize_shortest_edge=32, crop_size=32)


def _gradient(size=(48, 40)) -> Image.Image:
    width, height = size
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.stack([np.tile(x, (height, 1)), np.tile(x[::-1], (height, 1)), np.full((height, width), 90, np.uint8)], -1)
    return Image.fromarray(rgb, "RGB")


@pytest.mark.parametrize("mode", ["L", "RGBA", "CMYK", "P", "LA", "I;16", "1"])
def test_every_image_mode_becomes_a_normalised_rgb_array(mode):
    image = _gradient().convert(mode)
    array = preprocess(image, CONFIG)
    assert isinstance(array, np.ndarray) and array.shape == (3, 32, 32) and array.dtype == np.float32
    assert np.isfinite(array).all()
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
    array = preprocess(image, config)
    assert array.shape == (3, 32, 32)
    assert array.max() < 0.05  # only the black centre survives


def test_normalisation_uses_mean_and_std():
    config = PreprocessConfig(resize_shortest_edge=4, crop_size=4, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    array = preprocess(Image.new("RGB", (4, 4), (255, 0, 255)), config)
    assert np.allclose(array[:, 0, 0], [1.0, -1.0, 1.0])


def test_uint8_crops_normalised_as_a_batch_equal_per_image_preprocessing_bit_for_bit():
    """What crosses process boundaries (serving's batcher, training's cache) is the uint8 crop; normalising it
    later must give exactly `preprocess`, computed here the plain way: (v / 255 - mean) / std per pixel."""
    config = PreprocessConfig(resize_shortest_edge=40, crop_size=32)
    images = [_gradient((48, 40)), _gradient((40, 97)).convert("L"), Image.effect_noise((50, 60), 60).convert("RGB")]
    crops = np.stack([centre_crop(image, config) for image in images])
    assert crops.dtype == np.uint8 and crops.shape == (3, 32, 32, 3)
    plain = (crops.astype(np.float32) * np.float32(1 / 255) - np.float32(config.mean)) / np.float32(config.std)
    batch = normalize(crops, config)
    assert np.array_equal(batch, plain.transpose(0, 3, 1, 2))
    assert np.array_equal(batch, np.stack([preprocess(image, config) for image in images]))
    with pytest.raises(ValueError, match="uint8"):
        normalize(crops.astype(np.float32), config)


# transformers' CLIP processor works in float after a PIL bicubic resize of the same uint8 image, so the only
# difference is float rounding: 1e-5 absolute on normalised pixels (values span about [-1.8, 2.2]).
HF_TOLERANCE = 1e-5


@pytest.mark.parametrize("size", [(48, 40), (40, 97), (300, 224), (224, 224), (31, 500)])
def test_matches_transformers_clip_image_processor(size):
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    config = PreprocessConfig.from_image_processor(processor)
    images = [_gradient(size), _gradient(size).rotate(90, expand=True), Image.effect_noise(size, 60).convert("RGB")]
    expected = processor(images=images, return_tensors="np")["pixel_values"]
    ours = preprocess_batch(images, config)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= HF_TOLERANCE


def test_exif_orientation_is_applied():
    image = _gradient((60, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": a phone photo held upright
    tagged = image.copy()
    tagged.info["exif"] = exif.tobytes()
    tagged.getexif()[0x0112] = 6
    config = PreprocessConfig(resize_shortest_edge=16, crop_size=16)
    upright = image.transpose(Image.Transpose.ROTATE_270)
    assert np.array_equal(preprocess(tagged, config), preprocess(upright, config))
    assert not np.array_equal(preprocess(tagged, config), preprocess(image, config))


def test_preprocess_module_imports_no_torch():
    import subprocess
    import sys

    script = "import sys, har_core.runtime.preprocess; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", script], check=True)
