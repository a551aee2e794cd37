"""Images an export's own calibration abstains on ("no action") or answers, found by asking its `Predictor`.

No threshold is picked by hand: blank and noise images and shapes of unseen classes (nothing a person would name
one of the actions) are tried in a fixed order, then any images given, and the first the export's calibration
judges as asked is returned; likewise a video that ends in a "no action" segment.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from PIL import Image

from har_core.evaluation.ood_sets import noise_images, unseen_shape_images
from har_core.runtime.confidence import NO_ACTION
from har_core.runtime.labels import HAR_LABELS
from har_core.runtime.predictor import Predictor

SIDE = 96  # even, as video encoders want
VIDEO_FPS = 10


def candidates(extra: Iterable[Path] = (), known_classes: int = len(HAR_LABELS)) -> Iterator[Image.Image]:
    """Blank images of a few greys and colours, seeded noise, synthetic shapes of classes no model here was trained
    on (the evaluation's own out-of-distribution set), then `extra` image files."""
    for colour in [(0, 0, 0), (255, 255, 255), (128, 128, 128), (200, 30, 30), (30, 160, 60), (40, 60, 200)]:
        yield Image.new("RGB", (SIDE, SIDE), colour)
    yield from noise_images(24, SIDE, seed=0)
    yield from unseen_shape_images(24, SIDE, known_classes, seed=0)
    for path in extra:
        with Image.open(path) as image:
            yield image.convert("RGB")


def judged_image(
    predictor: Predictor,
    abstained: bool | None,
    extra: Iterable[Path] = (),
    out_of_distribution: bool | None = None,
) -> Image.Image:
    """The first candidate the export's calibration abstains on, or names an action for (`abstained`; None: either),
    and flags as out of distribution or not (`out_of_distribution`; None: either)."""
    assert predictor.calibration is not None, "the export carries no calibration"
    for image in candidates(extra, len(predictor.labels)):
        verdict = predictor.classify([image], top_k=1)[0].verdict
        if abstained in (None, verdict.abstained) and out_of_distribution in (None, verdict.out_of_distribution):
            return image
    raise AssertionError(
        f"no candidate image with abstained={abstained}, out_of_distribution={out_of_distribution} under "
        f"{predictor.calibration}"
    )


def encoded_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def no_action_video(backend, first: Image.Image, extra: Iterable[Path] = (), seconds: float = 3.0):
    """(MJPEG AVI bytes, the backend's answer): `first` for `seconds`, then for as long a candidate the export
    abstains on, the first such candidate whose stretch the backend's video scoring calls "no action" (encoding
    changes pixels, so each is checked through the real decoder)."""
    from tests.videos import encode_video, two_label_frames

    for image in candidates(extra, len(backend.labels)):
        if not backend.predictor.classify([image], top_k=1)[0].abstained:
            continue
        frames = two_label_frames(first.resize((SIDE, SIDE)), image, VIDEO_FPS, 2 * seconds, seconds)
        video = encode_video(frames, VIDEO_FPS, "mjpeg")
        answer = backend.predict_video(video, "no-action.avi", top_k=3)
        if answer.segments[-1].label == NO_ACTION:
            return video, answer
    raise AssertionError(f"no candidate video ends in {NO_ACTION!r} under {backend.predictor.calibration}")
