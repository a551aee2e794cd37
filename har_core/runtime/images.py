"""Decoding untrusted images: one pixel limit and one message for training, evaluation and serving.

PIL's own decompression-bomb check warns above ~89 Mpx and refuses above ~179 Mpx with its own wording; this
module replaces it with a single limit, checked on the header before any pixel is decoded. It imports no torch,
so the Bento service and the viewer use it too.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageOps

MAX_IMAGE_PIXELS = 64_000_000
# What PIL raises for unreadable, truncated or hostile files.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)

# The header check in `open_image` is the limit; PIL's check would fire first with other numbers and words.
Image.MAX_IMAGE_PIXELS = None


class InvalidImageError(ValueError):
    """The data is not a decodable image; the message names its source."""


class ImageTooLargeError(InvalidImageError):
    """The image has more pixels than `MAX_IMAGE_PIXELS`."""


ImageSource = str | Path | bytes


def open_image(source: ImageSource, name: str | None = None, draft_size: int | None = None) -> Image.Image:
    """Fully decode `source` (a path or encoded bytes), upright per its EXIF orientation.

    `draft_size` lets JPEG decode at a reduced scale (1/2, 1/4 or 1/8, keeping both sides >= `draft_size`): serving
    passes the preprocessing resize, so a 12 Mpx photo decodes as ~0.2 Mpx; PNG and WebP always decode at full size.
    The image is turned upright in place, so no second full-size copy exists at any time.
    Raises `ImageTooLargeError` or `InvalidImageError`, never a PIL error.
    """
    name = name or (str(source) if not isinstance(source, bytes) else "uploaded image")
    if isinstance(source, bytes) and not source:
        raise InvalidImageError(f"{name}: the file is empty (0 bytes).")
    try:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
            check_pixel_limit(image.width, image.height, name)
            if draft_size is not None:
                image.draft("RGB", (draft_size, draft_size))
            image.load()
            ImageOps.exif_transpose(image, in_place=True)
            return image
    except InvalidImageError:
        raise
    except FileNotFoundError as error:
        raise InvalidImageError(f"{name}: no such file.") from error
    except Image.UnidentifiedImageError as error:  # PIL's message names a BytesIO object, not the file
        raise InvalidImageError(f"{name}: not a readable image (no image format recognised).") from error
    except DECODE_ERRORS as error:
        raise InvalidImageError(f"{name}: not a readable image ({error}).") from error


def decoded_size(source: bytes, name: str, draft_size: int | None = None) -> tuple[int, int]:
    """(width, height) `open_image` will decode `source` at, read from the header alone (nothing is decoded).

    Lets a caller budget the memory of a whole batch before decoding any of it. Raises like `open_image`.
    """
    if not source:
        raise InvalidImageError(f"{name}: the file is empty (0 bytes).")
    try:
        with Image.open(io.BytesIO(source)) as image:
            check_pixel_limit(image.width, image.height, name)
            if draft_size is not None:
                image.draft("RGB", (draft_size, draft_size))
            return image.size
    except InvalidImageError:
        raise
    except Image.UnidentifiedImageError as error:
        raise InvalidImageError(f"{name}: not a readable image (no image format recognised).") from error
    except DECODE_ERRORS as error:
        raise InvalidImageError(f"{name}: not a readable image ({error}).") from error


def check_pixel_limit(width: int, height: int, name: str) -> None:
    """Refuse images over `MAX_IMAGE_PIXELS` with the one message every consumer shows."""
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLargeError(
            f"{name}: {width}x{height} is {width * height:,} pixels, over the {MAX_IMAGE_PIXELS:,} pixel limit."
        )
