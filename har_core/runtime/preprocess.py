"""The one image preprocessing path (training, evaluation and serving).

The preprocessing settings come from the backbone's image processor and are saved with every model and export, so
each consumer rebuilds exactly the same transform. This module imports numpy and PIL only (no torch): the training
Dataset wraps `preprocess`'s array in a tensor, and ONNX serving uses it as it is. It reproduces transformers'
`CLIPImageProcessor` (shortest-edge bicubic resize with a floored long side, centre crop, rescale, normalise).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field

ORIENTATION_TAG = 0x0112  # EXIF Orientation


class PreprocessConfig(BaseModel):
    """Resize the short side, centre-crop a square, scale to [0, 1], normalise with CLIP's mean and std."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resize_shortest_edge: int = Field(224, ge=1)
    crop_size: int = Field(224, ge=1)
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)

    @classmethod
    def from_image_processor(cls, processor) -> PreprocessConfig:
        """Read the settings of a transformers CLIP image processor."""
        return cls(
            resize_shortest_edge=processor.size.shortest_edge or processor.size.height,
            crop_size=processor.crop_size.height,
            mean=tuple(processor.image_mean),
            std=tuple(processor.image_std),
        )


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB view of any PIL image; transparent pixels (RGBA, LA, palette with transparency) become white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")  # no full-size copy when already RGBA
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float32)
        span = float(pixels.max() - pixels.min()) or 1.0
        scaled = ((pixels - pixels.min()) / span * 255.0).astype(np.uint8)
        return Image.fromarray(scaled, mode="L").convert("RGB")
    return image.convert("RGB")


def preprocess(image: Image.Image, config: PreprocessConfig) -> np.ndarray:
    """A float32 array of shape (3, crop, crop), upright per EXIF; the input image is not modified."""
    rgb = to_rgb(_upright(image))
    width, height = rgb.size
    short, long = min(width, height), max(width, height)
    new_short = config.resize_shortest_edge
    new_long = max(new_short, int(new_short * long / short))  # floored, as transformers does
    resized_size = (new_short, new_long) if width <= height else (new_long, new_short)
    resized = rgb.resize(resized_size, Image.Resampling.BICUBIC)
    crop = config.crop_size
    if resized.width < crop or resized.height < crop:  # crop larger than the resize: pad, centred, with black
        padded = Image.new("RGB", (max(crop, resized.width), max(crop, resized.height)))
        padded.paste(resized, ((padded.width - resized.width) // 2, (padded.height - resized.height) // 2))
        resized = padded
    left = (resized.width - crop) // 2
    top = (resized.height - crop) // 2
    pixels = np.asarray(resized, dtype=np.float32)[top : top + crop, left : left + crop] * np.float32(1 / 255)
    mean = np.asarray(config.mean, dtype=np.float32)
    std = np.asarray(config.std, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def _upright(image: Image.Image) -> Image.Image:
    """`image` turned per its EXIF orientation; `image` itself (no full-size copy) when it is upright already,
    as every image `open_image` returns is: the copy would double a large upload's memory for nothing."""
    if image.getexif().get(ORIENTATION_TAG, 1) not in range(2, 9):  # what exif_transpose acts on
        return image
    return ImageOps.exif_transpose(image)


def preprocess_batch(images: Sequence[Image.Image], config: PreprocessConfig) -> np.ndarray:
    """(batch, 3, crop, crop) float32 pixels for a list of images."""
    if not images:
        raise ValueError("No images to preprocess.")
    return np.stack([preprocess(image, config) for image in images])
