"""One decoder for untrusted images: the same pixel limit and message everywhere, no PIL bomb wording."""

import io
import warnings

import pytest
from PIL import Image

import har_core.runtime.images as images
from har_core.runtime.images import ImageTooLargeError, InvalidImageError, open_image


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def test_an_image_over_the_limit_gets_the_project_message_not_pils(monkeypatch):
    data = _png(1000, 1000)  # 1 Mpx; with the limit at 0.1 Mpx this is 10x over, where PIL would say "bomb"
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 100_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's DecompressionBombWarning must not fire either
        with pytest.raises(ImageTooLargeError, match=r"upload.png: 1000x1000 is 1,000,000 pixels, over the 100,000"):
            open_image(data, name="upload.png")


def test_pil_own_bomb_check_is_replaced():
    assert Image.MAX_IMAGE_PIXELS is None and images.MAX_IMAGE_PIXELS == 64_000_000


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"not an image at all", "not a readable image"), (_png(8, 8)[:40], "not a readable image")],
)
def test_bad_bytes_raise_one_error_type(data, message):
    with pytest.raises(InvalidImageError, match=message):
        open_image(data)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert open_image(buffer.getvalue()).size == (20, 40)
