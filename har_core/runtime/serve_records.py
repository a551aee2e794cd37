"""What the Bento records of every answer, for monitoring: one JSON object per line, and how to read them back.

The Bento (bento/records.py) writes one row per image answered (`/predict`, `/classify`, each image of
`/predict_batch`) and one per video (`/predict_video`), through `bentoml.monitor`. Its files, in
`<records directory>/predictions/`:

- `live.<worker>.jsonl`: the file each server worker is appending to;
- `<closed at>.<worker>.jsonl`: files closed when they reached `max_file_mb`, named by the UTC time they were closed
  (`20270102T030405123456Z`), so sorting the names sorts them oldest first; the oldest go first past `max_total_mb`;
- `schema.json`: the columns and what BentoML's monitor calls their role and type.

Torch- and BentoML-free, so the monitoring side reads records shipped to the artifact store the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RECORDS_NAME = "predictions"  # the bentoml.monitor name, and the folder under the records directory
RECORD_SUFFIX = ".jsonl"
LIVE_PREFIX = "live."
SCHEMA_FILE = "schema.json"
CLOSED_STAMP = "%Y%m%dT%H%M%S%fZ"  # UTC; fixed width, so the names sort by time

Route = Literal["/predict", "/predict_batch", "/classify", "/predict_video"]


class SegmentRecord(BaseModel):
    """One action segment of a video: its label and how long it lasts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    duration_s: float


class PredictionRecord(BaseModel):
    """One row: an image answered (or a whole video), as the client was answered, and what monitoring needs besides.

    For a video the answer-level fields summarise its sampled frames: `top_label` is the label of the segments that
    last longest in all, `abstained` says that label is "no action", and `confidence`, `margin` and `ood_score` are
    the frames' means (`margin` is null when the client asked for `top_k: 1`, which leaves no runner-up to read).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timestamp: datetime = Field(description="When the row was written (UTC).")
    request_id: str | None = Field(description="BentoML's request id: the X-BentoML-Request-ID response header.")
    route: Route
    image_index: int | None = Field(description="The image's place in its request (0 but for /predict_batch).")
    model_name: str
    model_version: str
    model_format: str
    calibration: Literal["own-labels", "zero-shot"] | None = Field(
        description="As in the answer: which temperature and threshold judged it (zero-shot: /classify's labels)."
    )
    top_label: str = Field(description="The best-ranked label, also when the answer abstained.")
    confidence: float = Field(description="The calibrated top-1 probability.")
    abstained: bool
    margin: float | None = Field(description="Calibrated top-1 minus top-2 probability over the whole label set.")
    ood_score: float | None
    out_of_distribution: bool
    latency_ms: float = Field(description="From the request's handler starting to its answer (decoding included).")
    inference_ms: float = Field(description="As in the answer.")
    frames_scored: int | None = Field(description="Videos: the sampled frames the model scored.")
    segments: list[SegmentRecord] | None = Field(description="Videos: the action segments, in order.")
    embedding: list[float] | None = Field(description="A sample of images: the normalised image embedding (float32).")
    image: str | None = Field(description="Only with records.keep_images: the uploaded bytes, base64.")


def record_files(directory: str | Path) -> list[Path]:
    """The record files of a records directory (or its `predictions/` folder): closed ones oldest first, then the
    live ones."""
    folder = Path(directory).expanduser()
    if (folder / RECORDS_NAME).is_dir():
        folder = folder / RECORDS_NAME
    files = sorted(folder.glob(f"*{RECORD_SUFFIX}"))
    return [path for path in files if not is_live(path)] + [path for path in files if is_live(path)]


def read_records(directory: str | Path) -> Iterator[PredictionRecord]:
    """Every row of the directory's record files, validated, file by file (`record_files`' order)."""
    for path in record_files(directory):
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield PredictionRecord.model_validate(json.loads(line))


def is_live(path: Path) -> bool:
    return path.name.startswith(LIVE_PREFIX)


def live_file(folder: Path, worker: int) -> Path:
    return folder / f"{LIVE_PREFIX}{worker}{RECORD_SUFFIX}"


def closed_file(folder: Path, worker: int, closed_at: datetime) -> Path:
    """Where a live file is renamed when it is closed at `closed_at` (UTC)."""
    return folder / f"{closed_at.strftime(CLOSED_STAMP)}.{worker}{RECORD_SUFFIX}"
