"""Decoding a request's uploads under two pixel budgets, one image at a time, straight to model input.

A compressed upload says nothing about its decoded size: a one-colour 7900x7900 PNG is ~200 kB and 187 MB as RGB,
so the body-size limit cannot bound memory. Here every upload's decoded size is read from its header first; a
request over `max_request_pixels` is refused (413) before anything is decoded. Then each image is decoded (JPEG at
a reduced DCT scale, no smaller than twice the preprocessing resize), cut to its (crop, crop, 3) uint8 model pixels
and freed before the next one, while it holds its pixels of the worker-wide `PixelBudget`: concurrent requests wait for
budget instead of decoding side by side, so a worker's decode memory stays near `max_decoding_pixels` × a few
bytes whatever the traffic.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from har_core.runtime.images import ImageTooLargeError, decoded_size, open_image
from har_core.runtime.preprocess import PreprocessConfig, centre_crop, normalize

logger = logging.getLogger(__name__)

# Reduced-size JPEG decoding keeps at least twice the preprocessing resize, so the final bicubic resize still
# downsamples by >= 2 as it does from a full decode: at exactly the resize size, pixels drifted (cosine 0.988 on a
# 1000x700 photo-like JPEG at 64 px); at twice it, cosine >= 0.9999 (tests/bento/test_decoding.py).
DRAFT_FACTOR = 2


class RequestPixelsError(ImageTooLargeError):
    """A request whose images decode to more pixels than `max_request_pixels` (answered 413)."""


class DecodeBusyError(RuntimeError):
    """No decode budget came free within the wait (answered 503: the worker is saturated, retry later)."""


class PixelBudget:
    """A weighted semaphore over decoded pixels, shared by every request of one worker process.

    A hold larger than the whole budget takes the whole budget (it waits until nothing else decodes), so no single
    image allowed by the per-image limit can wait forever.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._available = capacity
        self._changed = threading.Condition()

    @property
    def in_use(self) -> int:
        with self._changed:
            return self.capacity - self._available

    @contextmanager
    def hold(self, pixels: int, timeout_s: float) -> Iterator[None]:
        """Hold `pixels` of the budget for the block; `DecodeBusyError` when they are not free within `timeout_s`."""
        weight = min(max(pixels, 1), self.capacity)
        with self._changed:
            if not self._changed.wait_for(lambda: self._available >= weight, timeout_s):
                raise DecodeBusyError(
                    f"The server is decoding {self.capacity - self._available:,} pixels for other requests "
                    f"(max_decoding_pixels {self.capacity:,}) and none came free within {timeout_s:.0f} s; retry."
                )
            self._available -= weight
        try:
            yield
        finally:
            with self._changed:
                self._available += weight
                self._changed.notify_all()


def decode_uploads(
    uploads: Sequence[tuple[bytes, str]],
    config: PreprocessConfig,
    max_request_pixels: int,
    budget: PixelBudget,
    wait_s: float,
) -> np.ndarray:
    """(n, 3, crop, crop) float32 model input for `uploads` ((encoded bytes, name) pairs); see `decode_crops`."""
    return normalize(decode_crops(uploads, config, max_request_pixels, budget, wait_s), config)


def decode_crops(
    uploads: Sequence[tuple[bytes, str]],
    config: PreprocessConfig,
    max_request_pixels: int,
    budget: PixelBudget,
    wait_s: float,
) -> np.ndarray:
    """(n, crop, crop, 3) uint8 centre crops of `uploads` ((encoded bytes, name) pairs), decoded one at a time;
    `normalize` turns them into exactly the model input `preprocess` gives, at a quarter of its size until then.

    Raises `RequestPixelsError` (413), `ImageTooLargeError` / `InvalidImageError` from the decoder, or
    `DecodeBusyError`; nothing is decoded when the headers already show the request is over its budget.
    """
    draft_size = DRAFT_FACTOR * config.resize_shortest_edge
    sizes = [decoded_size(data, name, draft_size=draft_size) for data, name in uploads]
    total = sum(width * height for width, height in sizes)
    if total > max_request_pixels:
        raise RequestPixelsError(
            f"The {len(uploads)} image(s) decode to {total:,} pixels; the limit is {max_request_pixels:,} "
            "decoded pixels per request (max_request_pixels): send fewer or smaller images."
        )
    crops = np.empty((len(uploads), config.crop_size, config.crop_size, 3), np.uint8)
    for index, ((data, name), (width, height)) in enumerate(zip(uploads, sizes, strict=True)):
        with budget.hold(width * height, wait_s):
            image = open_image(data, name=name, draft_size=draft_size)
            try:
                crops[index] = centre_crop(image, config)
            finally:
                image.close()  # frees the decoded pixels now, not when the garbage collector gets to them
            del image
    return crops
