"""The serving decoder (bento/decoding.py): the pixel budgets with real threads, and the parity of reduced-size JPEG
decoding with training's full decode, on the tiny model's ONNX export."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest
from PIL import Image

from bento.decoding import DecodeBusyError, PixelBudget, RequestPixelsError, decode_uploads
from har_core.runtime.images import InvalidImageError, decoded_size, open_image
from har_core.runtime.predictor import Predictor
from har_core.runtime.preprocess import PreprocessConfig, preprocess

CONFIG = PreprocessConfig()


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (90,) * len(mode)).save(buffer, "PNG")
    return buffer.getvalue()


def _photo_like_jpeg(seed: int, size: tuple[int, int], exif_orientation: int | None = None) -> bytes:
    """Smooth structure plus sensor-like noise, as in a photo (a flat or pure-noise image says nothing of parity)."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize(size, Image.Resampling.BICUBIC)
    pixels = np.asarray(coarse, np.float32) + rng.normal(0, 8, (size[1], size[0], 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def test_jpeg_header_reports_the_reduced_decode_size_and_png_its_full_size():
    assert decoded_size(_photo_like_jpeg(0, (4000, 3000)), "p.jpg", draft_size=224) == (500, 375)
    assert decoded_size(_photo_like_jpeg(0, (400, 300)), "p.jpg", draft_size=224) == (400, 300)  # no smaller scale
    assert decoded_size(_png((3000, 2000)), "p.png", draft_size=224) == (3000, 2000)
    with pytest.raises(InvalidImageError, match="empty"):
        decoded_size(b"", "e.png")


def test_a_request_over_its_pixel_budget_is_refused_before_anything_is_decoded():
    budget = PixelBudget(10_000_000)
    uploads = [(_png((3000, 2000)), f"{i}.png") for i in range(3)]  # 18 Mpx
    with pytest.raises(RequestPixelsError, match=r"18,000,000 pixels; the limit is 12,000,000 .*max_request_pixels"):
        decode_uploads(uploads, CONFIG, 12_000_000, budget, wait_s=1)
    assert budget.in_use == 0
    pixels = decode_uploads(uploads[:2], CONFIG, 12_000_000, budget, wait_s=5)  # each image fits the 10 Mpx budget
    assert pixels.shape == (2, 3, 224, 224) and budget.in_use == 0


def test_the_worker_budget_makes_decodes_wait_for_each_other_and_times_out_with_its_name():
    budget = PixelBudget(100)
    held, release = threading.Event(), threading.Event()

    def hold_everything() -> None:
        with budget.hold(100, timeout_s=5):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold_everything)
    holder.start()
    held.wait(5)
    started = time.monotonic()
    with pytest.raises(DecodeBusyError, match="max_decoding_pixels 100"), budget.hold(1, timeout_s=0.3):
        pass
    assert time.monotonic() - started >= 0.3
    waited = []

    def wait_then_hold() -> None:
        with budget.hold(500, timeout_s=5):  # more than the whole budget: takes all of it once it is free
            waited.append(budget.in_use)

    waiter = threading.Thread(target=wait_then_hold)
    waiter.start()
    time.sleep(0.2)
    assert not waited  # still waiting for the holder
    release.set()
    holder.join(5)
    waiter.join(5)
    assert waited == [100] and budget.in_use == 0


def test_reduced_jpeg_decoding_keeps_parity_with_the_full_decode(onnx_export_dir):
    """Serving decodes large JPEGs at 1/2..1/8 scale; training decodes them fully. Measured here: the preprocessed
    pixels and the model's image embeddings of both paths (EXIF-rotated images included)."""
    predictor = Predictor.from_export(onnx_export_dir, device="cpu")
    config = predictor.manifest.preprocess
    sizes = [(4000, 3000), (3000, 4000), (1600, 1200), (1000, 700), (640, 480)]
    jpegs = [_photo_like_jpeg(seed, size, 6 if seed == 1 else None) for seed, size in enumerate(sizes)]
    full = np.stack([preprocess(open_image(data), config) for data in jpegs])
    budget = PixelBudget(64_000_000)
    served = decode_uploads([(data, "p.jpg") for data in jpegs], config, 128_000_000, budget, wait_s=5)
    assert served.shape == full.shape
    pixel_cosine = _cosine(served.reshape(len(jpegs), -1), full.reshape(len(jpegs), -1))
    embedding_cosine = _cosine(predictor.run(served)[0], predictor.run(full)[0])
    worst = np.abs(served - full).max()
    print(f"draft vs full: min pixel cosine {pixel_cosine.min():.5f}, embedding {embedding_cosine.min():.5f}")
    print(f"max |pixel difference| {worst:.3f} (normalised units)")
    assert pixel_cosine.min() > 0.999
    assert embedding_cosine.min() > 0.999


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
