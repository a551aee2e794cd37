"""From per-frame probabilities over time to action segments: smoothing, then runs of one label.

Pure numpy: the video reader and the webcam both hand their scores here. A single frame's prediction flickers
(motion blur, an occluded hand); averaging a few sampled frames around each one and merging runs shorter than a
minimum length turn the flicker into the segments a person would mark.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict


class ActionSegment(BaseModel):
    """One stretch of the video with one action: its label, start and end (seconds) and the label's mean score."""

    model_config = ConfigDict(frozen=True)

    label: str
    start_s: float
    end_s: float
    mean_score: float
    frames: int  # sampled frames in the segment


def smooth(probabilities: np.ndarray, window: int) -> np.ndarray:
    """A centred moving average over `window` rows (odd windows are centred; at the ends, over the rows there are).

    The input is not modified; each output row still sums to 1.
    """
    if window <= 1 or len(probabilities) <= 1:
        return probabilities.copy()
    before = (window - 1) // 2
    after = window - 1 - before
    padded = np.concatenate([np.zeros((1, probabilities.shape[1])), np.cumsum(probabilities, axis=0)])
    rows = np.arange(len(probabilities))
    low = np.clip(rows - before, 0, len(probabilities))
    high = np.clip(rows + after + 1, 0, len(probabilities))
    return (padded[high] - padded[low]) / (high - low)[:, None]


def segments(
    times: Sequence[float],
    probabilities: np.ndarray,
    smoothed: np.ndarray,
    labels: Sequence[str],
    min_segment_s: float,
    end_s: float,
) -> list[ActionSegment]:
    """Runs of the smoothed top label, runs shorter than `min_segment_s` merged into a neighbour.

    A boundary lies halfway between the last frame of one run and the first of the next, so it is off from the true
    change by at most half a sampling step when every frame is right; the first segment starts at 0 and the last
    ends at `end_s`. `mean_score` is the label's mean raw (unsmoothed) probability over the segment's frames.
    """
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        return []
    winners = smoothed.argmax(axis=1)
    runs = _runs(winners)
    while len(runs) > 1:
        bounds = _bounds(times, runs, end_s)
        short = [i for i, (lo, hi) in enumerate(bounds) if hi - lo < min_segment_s]
        if not short:
            break
        index = min(short, key=lambda i: bounds[i][1] - bounds[i][0])
        winners[runs[index][0] : runs[index][1]] = _absorbing_label(runs, index, winners, smoothed)
        runs = _runs(winners)
    return [
        ActionSegment(
            label=labels[winners[first]],
            start_s=round(start, 6),
            end_s=round(end, 6),
            mean_score=float(probabilities[first:stop, winners[first]].mean()),
            frames=stop - first,
        )
        for (first, stop), (start, end) in zip(runs, _bounds(times, runs, end_s), strict=True)
    ]


def _runs(winners: np.ndarray) -> list[tuple[int, int]]:
    """[first, stop) index ranges of equal consecutive values."""
    changes = np.flatnonzero(np.diff(winners)) + 1
    edges = [0, *changes.tolist(), len(winners)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _bounds(times: np.ndarray, runs: list[tuple[int, int]], end_s: float) -> list[tuple[float, float]]:
    cuts = [0.0] + [float(times[first - 1] + times[first]) / 2 for first, _ in runs[1:]] + [max(end_s, times[-1])]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _absorbing_label(runs: list[tuple[int, int]], index: int, winners: np.ndarray, smoothed: np.ndarray) -> int:
    """The neighbour's label that the short run's frames score higher (smoothed) on average."""
    first, stop = runs[index]
    neighbours = [runs[i][0] for i in (index - 1, index + 1) if 0 <= i < len(runs)]
    candidates = {int(winners[start]) for start in neighbours}
    return max(candidates, key=lambda label: smoothed[first:stop, label].mean())
