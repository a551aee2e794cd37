"""Score a folder's images and videos with one `Predictor`: a table of top-k predictions and a summary.

Rows go to parquet part files as they are scored (`har_core.inference.table`): memory holds one chunk, whatever the
number of files and frames.

Images are decoded and preprocessed exactly as evaluation and the in-process `Predictor.predict` do (full decode,
the export's preprocessing), one batch ahead on a second thread while the model scores the current batch, so
decoding and inference overlap. Videos go through `har_core.runtime.video_scoring` (one row per sampled frame).
Every row carries its verdict (`abstained`, `ood_score`): an image's, and a video frame's own (the frame alone, as
the image routes judge it, not the smoothed timeline's).
A file that cannot be read is listed with its reason (`on_error: skip`) or stops the run (`on_error: fail`).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, model_validator
from tqdm.auto import tqdm

from har_core.config import InferenceConfig
from har_core.inference.inputs import InputFile, InputFolder
from har_core.inference.table import PredictionsTable, PredictionsWriter
from har_core.runtime.images import InvalidImageError, open_image
from har_core.runtime.predictor import Prediction, Predictor
from har_core.runtime.preprocess import preprocess
from har_core.runtime.video import VideoError, VideoReader
from har_core.runtime.video_scoring import score_video

logger = logging.getLogger(__name__)


class UnreadableFileError(ValueError):
    """A file could not be scored and `on_error` is `fail`."""


class UnreadableFile(BaseModel):
    file: str
    error: str  # what is wrong, without the file name (decoders start their messages with it)

    @model_validator(mode="after")
    def _without_the_name(self) -> UnreadableFile:
        self.error = self.error.removeprefix(f"{self.file}: ")
        return self


class PredictionSummary(BaseModel):
    """What a batch inference run scored, how fast, and what it could not read."""

    source: str
    model_version: str
    format: str
    files: int
    images: int
    videos: int
    video_frames: int
    other_files: int  # neither image nor video: left alone
    unreadable: list[UnreadableFile]
    label_counts: dict[str, int]  # top-1 label of every image and every sampled video frame, most frequent first
    abstained: int = 0  # of those, how many are "no action" (top-1 below the calibration's threshold)
    scoring_s: float
    images_per_s: float  # (images + video frames) / scoring_s


@dataclass
class _Table:
    """The writer of the rows, and the failures."""

    writer: PredictionsWriter
    unreadable: list[UnreadableFile] = field(default_factory=list)

    def add(
        self,
        file: str,
        kind: str,
        ranked: Sequence[Prediction],
        abstained: bool,
        ood_score: float | None,
        frame: int | None = None,
        time_s: float | None = None,
    ) -> None:
        """One row from ranked predictions (best first) and the verdict's fields."""
        names = [prediction.label for prediction in ranked]
        scores = np.array([prediction.score for prediction in ranked])
        self.writer.add(file, kind, names, scores, frame, time_s, abstained, ood_score)


def score_files(
    predictor: Predictor,
    folder: InputFolder,
    files: Sequence[InputFile],
    config: InferenceConfig,
    model_version: str,
    other_files: int = 0,
    output_dir: str | Path | None = None,
) -> tuple[PredictionsTable, PredictionSummary]:
    """The predictions table (part files under `output_dir`, a temporary folder when None; columns file, kind,
    frame, time_s, label_i/score_i, abstained, ood_score, model_version, format (`har_core.inference.table.columns`);
    images in file order, then each video's frames) and its summary. Raises `UnreadableFileError` on the first
    unreadable file when `on_error` is `fail`."""
    top_k = max(1, min(config.top_k, len(predictor.labels)))
    directory = Path(output_dir) if output_dir is not None else Path(tempfile.mkdtemp(prefix="har-clip-predictions-"))
    table = _Table(PredictionsWriter(directory, top_k, model_version, predictor.format))
    for name, reason in getattr(folder, "skipped", ()):  # links out of the folder, unreadable folders
        _fail(table, config, UnreadableFile(file=name, error=reason))
    images = [item for item in files if item.kind == "image"]
    videos = [item for item in files if item.kind == "video"]
    started = time.perf_counter()
    with tqdm(total=len(files), unit="file", desc="Scoring", mininterval=1.0) as progress:
        for names, pixels, failures in _decoded_batches(predictor, folder, images, config):
            for failure in failures:
                _fail(table, config, failure)
            if names:
                for name, answer in zip(names, predictor.classify_pixels(pixels, top_k), strict=True):
                    table.add(name, "image", answer.predictions, answer.abstained, answer.verdict.ood_score)
            progress.update(len(names) + len(failures))
            progress.set_postfix(img_s=f"{table.writer.rows / (time.perf_counter() - started):.1f}", refresh=False)
        frames, scored_videos = 0, 0
        for item in videos:
            count = _score_video(predictor, folder, item, config, table)
            frames, scored_videos = frames + count, scored_videos + (count > 0)
            progress.update(1)
    elapsed = time.perf_counter() - started
    predictions = table.writer.close()
    scored = predictions.rows
    counts = table.writer.label_counts
    summary = PredictionSummary(
        source=folder.description,
        model_version=model_version,
        format=predictor.format,
        files=len(files),
        images=scored - frames,
        videos=scored_videos,
        video_frames=frames,
        other_files=other_files,
        unreadable=table.unreadable,
        label_counts=dict(counts.most_common()),
        abstained=table.writer.abstained,
        scoring_s=elapsed,
        images_per_s=scored / elapsed if elapsed > 0 else 0.0,
    )
    logger.info(
        "Scored %d images and %d video frames from %d files in %.1f s (%.1f img/s); %d unreadable",
        summary.images, frames, len(files), elapsed, summary.images_per_s, len(table.unreadable),
    )  # fmt: skip
    return predictions, summary


def _decoded_batches(
    predictor: Predictor, folder: InputFolder, images: Sequence[InputFile], config: InferenceConfig
) -> Iterator[tuple[list[str], np.ndarray, list[UnreadableFile]]]:
    """(names, pixels, failures) per batch; the next batch decodes on a second thread while this one is scored."""
    batches = [images[start : start + config.batch_size] for start in range(0, len(images), config.batch_size)]
    with ThreadPoolExecutor(1, thread_name_prefix="har-clip-decode") as decoder:
        pending: Future | None = decoder.submit(_decode, predictor, folder, batches[0], config) if batches else None
        for index in range(len(batches)):
            decoded = pending.result()
            if index + 1 < len(batches):
                pending = decoder.submit(_decode, predictor, folder, batches[index + 1], config)
            yield decoded


def _decode(
    predictor: Predictor, folder: InputFolder, batch: Sequence[InputFile], config: InferenceConfig
) -> tuple[list[str], np.ndarray, list[UnreadableFile]]:
    crop = predictor.manifest.preprocess.crop_size
    pixels = np.empty((len(batch), 3, crop, crop), np.float32)
    names: list[str] = []
    failures: list[UnreadableFile] = []
    for item in batch:
        if item.size > config.input.max_image_bytes:
            message = f"{item.size:,} bytes, over input.max_image_bytes {config.input.max_image_bytes:,}"
            failures.append(UnreadableFile(file=item.name, error=message))
            continue
        try:
            source = folder.local_path(item.name) or folder.read(item.name)
            image = open_image(source, name=item.name)
            try:
                pixels[len(names)] = preprocess(image, predictor.manifest.preprocess)
            finally:
                image.close()
        except (InvalidImageError, OSError) as error:
            failures.append(UnreadableFile(file=item.name, error=str(error)))
            continue
        names.append(item.name)
    return names, pixels[: len(names)], failures


def _score_video(
    predictor: Predictor, folder: InputFolder, item: InputFile, config: InferenceConfig, table: _Table
) -> int:
    """The video's sampled frames as rows; the number of frames (0 when it could not be read)."""
    resize = predictor.manifest.preprocess.resize_shortest_edge
    try:
        if item.size > config.video.max_bytes:  # before a remote file is read into memory
            raise VideoError(f"{item.name}: {item.size:,} bytes, over video.max_bytes {config.video.max_bytes:,}.")
        source = folder.local_path(item.name) or folder.read(item.name)
        with VideoReader(source, config.video, name=item.name, resize=resize) as reader:
            result = score_video(predictor, reader, top_k=len(predictor.labels))
    except (VideoError, OSError) as error:
        _fail(table, config, UnreadableFile(file=item.name, error=str(error)))
        return 0
    for index, frame in enumerate(result.frames):
        table.add(
            item.name, "video", frame.predictions, frame.abstained, frame.ood_score, frame=index, time_s=frame.time_s
        )
    return len(result.frames)


def _fail(table: _Table, config: InferenceConfig, failure: UnreadableFile) -> None:
    if config.on_error == "fail":
        raise UnreadableFileError(f"{failure.file}: {failure.error} (on_error: fail; `skip` lists it and goes on)")
    logger.warning("Unreadable, skipped: %s: %s", failure.file, failure.error)
    table.unreadable.append(failure)
