"""From per-frame probabilities over time to action segments: smoothing, then runs of one label.

Pure numpy: the video reader and the webcam both hand their scores here. A single frame's prediction flickers
(motion blur, an occluded hand); averaging a few sampled frames around each one and merging runs shorter than a
minimum length turn the flicker into the segments a person would mark.

Abstention is judged on the smoothed confidence: each frame's own calibrated top-1 probability, averaged over the
same window as the probabilities (`smoothed_confidence`; live, `RunningSmoother.confidence` and `current_action`).
A moment is "no action" when it is below the calibration's threshold, so one unsure frame among sure ones does not
open a gap, and a stretch where nothing is recognisable becomes a "no action" segment. Not the top-1 of the
smoothed probabilities: where one sure action gives way to another, their average is unsure of both, and every
change of action would read "no action".
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from har_core.runtime.confidence import NO_ACTION


class ActionSegment(BaseModel):
    """One stretch of the video with one action: its label, start and end (seconds) and the label's mean score
    (for a "no action" segment, the mean top-1 probability of its frames: how unsure they were)."""

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
    refine: int = 0,
    abstain_below: float | None = None,
    confidence: np.ndarray | None = None,
) -> list[ActionSegment]:
    """Runs of the smoothed top label, runs shorter than `min_segment_s` merged into a neighbour.

    Smoothing shifts a change towards the less confident side (an average of a weak "a" and a strong "b" is "b"),
    so each boundary is then moved, by at most `refine` frames, to where the raw probabilities split best between
    the two labels (pass the smoothing window's half-width). A boundary lies halfway between the last frame of one
    run and the first of the next, so it is off from the true change by at most half a sampling step when every
    frame is right; the first segment starts at 0 and the last ends at `end_s`. `mean_score` is the label's mean
    raw (unsmoothed) probability over the segment's frames.

    With `abstain_below` (the calibration's threshold for these labels), a frame whose `confidence` is below it is
    "no action" (`confidence`: each frame's smoothed confidence, `smoothed_confidence`; None: the top-1 of
    `smoothed`). Its runs are merged and their boundaries refined like a label's, "no action" counting as a label of
    probability `abstain_below` on every frame.
    """
    times = np.asarray(times, dtype=np.float64)
    if len(times) == 0:
        return []
    names = list(labels)
    winners = smoothed.argmax(axis=1)
    if abstain_below is not None:
        confidence = smoothed.max(axis=1) if confidence is None else np.asarray(confidence)
        winners[confidence < abstain_below] = len(names)
        probabilities = _with_no_action(probabilities, abstain_below)
        smoothed = _with_no_action(smoothed, abstain_below)
        names.append(NO_ACTION)
    runs = _runs(winners)
    while len(runs) > 1:
        bounds = _bounds(times, runs, end_s)
        short = [i for i, (lo, hi) in enumerate(bounds) if hi - lo < min_segment_s]
        if not short:
            break
        index = min(short, key=lambda i: bounds[i][1] - bounds[i][0])
        winners[runs[index][0] : runs[index][1]] = _absorbing_label(runs, index, winners, smoothed)
        runs = _runs(winners)
    for boundary in range(1, len(runs)):
        _refine_boundary(winners, _runs(winners), boundary, probabilities, refine)
    runs = _runs(winners)
    return [
        ActionSegment(
            label=names[winners[first]],
            start_s=round(start, 6),
            end_s=round(end, 6),
            mean_score=_mean_score(probabilities[first:stop], int(winners[first]), len(labels)),
            frames=stop - first,
        )
        for (first, stop), (start, end) in zip(runs, _bounds(times, runs, end_s), strict=True)
    ]


def current_action(
    smoothed: np.ndarray, labels: Sequence[str], abstain_below: float | None, confidence: float | None = None
) -> tuple[str, float]:
    """What one smoothed row shows, and how sure: its top label and that label's smoothed probability, or
    `NO_ACTION` and the confidence when `confidence` (the smoothed confidence, `RunningSmoother.confidence`; None:
    the row's top-1) is below `abstain_below` (the calibration's threshold for `labels`; None: a model without
    calibration, never "no action")."""
    best = int(np.argmax(smoothed))
    sure = float(smoothed[best]) if confidence is None else float(confidence)
    if abstain_below is not None and sure < abstain_below:
        return NO_ACTION, sure
    return labels[best], float(smoothed[best])


def smoothed_confidence(probabilities: np.ndarray, window: int) -> np.ndarray:
    """Each frame's own top-1 probability, averaged over the centred `window` as `smooth` averages the rows."""
    return smooth(probabilities.max(axis=1, keepdims=True), window)[:, 0]


def _with_no_action(probabilities: np.ndarray, abstain_below: float) -> np.ndarray:
    """`probabilities` with a last column for "no action", `abstain_below` on every row."""
    return np.hstack([probabilities, np.full((len(probabilities), 1), abstain_below)])


def _mean_score(rows: np.ndarray, winner: int, num_labels: int) -> float:
    """The winner's mean raw probability over `rows`; for "no action" (past the labels), the mean top-1."""
    if winner >= num_labels:
        return float(rows[:, :num_labels].max(axis=1).mean())
    return float(rows[:, winner].mean())


def _runs(winners: np.ndarray) -> list[tuple[int, int]]:
    """[first, stop) index ranges of equal consecutive values."""
    changes = np.flatnonzero(np.diff(winners)) + 1
    edges = [0, *changes.tolist(), len(winners)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _bounds(times: np.ndarray, runs: list[tuple[int, int]], end_s: float) -> list[tuple[float, float]]:
    cuts = [0.0] + [float(times[first - 1] + times[first]) / 2 for first, _ in runs[1:]] + [max(end_s, times[-1])]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _refine_boundary(
    winners: np.ndarray, runs: list[tuple[int, int]], boundary: int, probabilities: np.ndarray, reach: int
) -> None:
    """Move the start of run `boundary` by up to `reach` frames to where the raw probabilities of the labels on
    either side split best (both runs keep at least one frame; ties keep it where it was)."""
    if reach <= 0:
        return
    (first, _), (start, stop) = runs[boundary - 1], runs[boundary]
    before, after = winners[first], winners[start]
    low, high = max(first, start - reach - 1), min(stop, start + reach + 1)
    cuts = range(max(first + 1, start - reach), min(stop - 1, start + reach) + 1)

    def fit(cut: int) -> tuple[float, int]:
        score = probabilities[low:cut, before].sum() + probabilities[cut:high, after].sum()
        return float(score), -abs(cut - start)

    best = max(cuts, key=fit)
    winners[low:best] = before
    winners[best:high] = after


def _absorbing_label(runs: list[tuple[int, int]], index: int, winners: np.ndarray, smoothed: np.ndarray) -> int:
    """The neighbour's label that the short run's frames score higher (smoothed) on average."""
    first, stop = runs[index]
    neighbours = [runs[i][0] for i in (index - 1, index + 1) if 0 <= i < len(runs)]
    candidates = {int(winners[start]) for start in neighbours}
    return max(candidates, key=lambda label: smoothed[first:stop, label].mean())


class RunningSmoother:
    """Smoothed probabilities of a live stream, one frame at a time: an exponential moving average (`ema`, weight
    `alpha` on the newest frame) or the mean of the last `window` frames (`window`). Each frame's own top-1
    probability is smoothed alike (`confidence`), and `action` names what the stream shows now: "no action" while
    that smoothed confidence is below the calibration's threshold, as a video's segments are cut."""

    def __init__(self, method: str = "ema", alpha: float = 0.3, window: int = 5) -> None:
        if method not in ("ema", "window"):
            raise ValueError(f"smoothing must be 'ema' or 'window', got {method!r}")
        if not 0 < alpha <= 1 or window < 1:
            raise ValueError(f"alpha must be in (0, 1] and window >= 1, got {alpha} and {window}")
        self.method, self.alpha, self.window = method, alpha, window
        self._recent: deque[np.ndarray] = deque(maxlen=window)
        self._average: np.ndarray | None = None  # the smoothed probabilities, then the smoothed confidence

    def update(self, probabilities: np.ndarray) -> np.ndarray:
        """The smoothed probabilities after this frame (a new array; the input is kept as it is)."""
        row = np.asarray(probabilities, dtype=np.float64)
        row = np.append(row, row.max())  # the frame's own top-1, smoothed beside its probabilities
        if self.method == "window":
            self._recent.append(row)
            self._average = np.mean(self._recent, axis=0)
        else:
            previous = self._average
            self._average = row if previous is None else self.alpha * row + (1 - self.alpha) * previous
        return self._average[:-1].copy()

    @property
    def confidence(self) -> float | None:
        """The smoothed top-1 probability of the frames so far (None before the first)."""
        return None if self._average is None else float(self._average[-1])

    def action(self, labels: Sequence[str], abstain_below: float | None) -> tuple[str, float] | None:
        """What the stream shows now (`current_action` of the smoothed probabilities, judged by the smoothed
        confidence); None before the first frame."""
        if self._average is None:
            return None
        return current_action(self._average[:-1], labels, abstain_below, self._average[-1])
