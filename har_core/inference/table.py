"""The batch predictions, written as they are scored: parquet part files of at most `CHUNK_ROWS` rows each.

A run over a thousand one-hour videos is millions of rows; held as one table they took ~1.8 KB each. The writer
keeps one chunk in memory, so memory does not depend on the number of files or frames, and the table is read back
a chunk at a time (`frames()`), which the CSV export streams. `opener` is how a part is opened: `open` here, the
artifact store's `fileio.open` where the parts were moved into the store (har_zenml/materializers.py).
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

CHUNK_ROWS = 4096
Opener = Callable[[str, str], IO]


def columns(top_k: int) -> list[str]:
    """file, kind ("image" or "video"), frame and time_s (a video's sampled frame; empty for an image), label_i and
    score_i (the top_k calibrated probabilities, best first), abstained (score_1 below the calibration's threshold:
    "no action"; always False without a calibration), ood_score (how unlike the training images; empty without a
    calibration), model_version, format."""
    ranked = [name for rank in range(1, top_k + 1) for name in (f"label_{rank}", f"score_{rank}")]
    return ["file", "kind", "frame", "time_s", *ranked, "abstained", "ood_score", "model_version", "format"]


class PredictionsTable(BaseModel):
    """The part files of one run's predictions (rows: file, kind, frame, time_s, label_i/score_i, abstained,
    ood_score, model_version, format, as `columns` describes them; images in file order, then each video's frames in
    file order)."""

    model_config = ConfigDict(frozen=True)

    directory: str
    parts: tuple[str, ...]
    rows: int
    columns: tuple[str, ...]

    def frames(self, opener: Opener = open) -> Iterator[pd.DataFrame]:
        """One DataFrame per part, in order."""
        for part in self.parts:
            with opener(posixpath.join(self.directory, part), "rb") as handle:
                yield pd.read_parquet(handle)

    def to_frame(self, opener: Opener = open) -> pd.DataFrame:
        """The whole table in memory (small tables, tests); `frames()` for large ones."""
        chunks = list(self.frames(opener))
        if not chunks:
            return _typed(pd.DataFrame(columns=list(self.columns)))
        return pd.concat(chunks, ignore_index=True)

    def write_csv(self, path: str | Path, opener: Opener = open) -> Path:
        """The table as CSV, a part at a time (the header once)."""
        path = Path(path)
        with path.open("w", newline="") as handle:
            pd.DataFrame(columns=list(self.columns)).to_csv(handle, index=False)
            for chunk in self.frames(opener):
                chunk.to_csv(handle, index=False, header=False)
        return path


class PredictionsWriter:
    """Rows in, part files out; counts what the summary needs as it goes."""

    def __init__(
        self, directory: str | Path, top_k: int, model_version: str, export_format: str, chunk_rows: int = CHUNK_ROWS
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.top_k, self.model_version, self.export_format, self.chunk_rows = (
            top_k, model_version, export_format, chunk_rows,
        )  # fmt: skip
        self.columns = columns(top_k)
        self.label_counts: Counter[str] = Counter()
        self.rows = 0
        self.abstained = 0
        self._pending: list[dict] = []
        self._parts: list[str] = []

    def add(
        self,
        file: str,
        kind: str,
        names: Sequence[str],
        probabilities: np.ndarray,
        frame: int | None = None,
        time_s: float | None = None,
        abstained: bool = False,
        ood_score: float | None = None,
    ) -> None:
        order = np.argsort(-probabilities, kind="stable")[: self.top_k]
        row = {"file": file, "kind": kind, "frame": frame, "time_s": time_s}
        for rank, index in enumerate(order, start=1):
            row[f"label_{rank}"], row[f"score_{rank}"] = names[index], float(probabilities[index])
        row["abstained"], row["ood_score"] = bool(abstained), ood_score
        self._pending.append(row)
        self.label_counts[row["label_1"]] += 1
        self.abstained += bool(abstained)
        self.rows += 1
        if len(self._pending) >= self.chunk_rows:
            self._flush()

    def close(self) -> PredictionsTable:
        self._flush()
        return PredictionsTable(
            directory=str(self.directory), parts=tuple(self._parts), rows=self.rows, columns=tuple(self.columns)
        )

    def _flush(self) -> None:
        if not self._pending:
            return
        frame = pd.DataFrame(self._pending, columns=self.columns[:-2])
        frame["model_version"], frame["format"] = self.model_version, self.export_format
        name = f"part-{len(self._parts):05d}.parquet"
        _typed(frame).to_parquet(self.directory / name, index=False)
        self._parts.append(name)
        self._pending = []


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    frame["frame"] = frame["frame"].astype("Int64")
    frame["time_s"] = frame["time_s"].astype("float64")
    frame["abstained"] = frame["abstained"].astype("bool")
    frame["ood_score"] = frame["ood_score"].astype("float64")
    return frame
