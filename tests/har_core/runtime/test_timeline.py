"""Smoothing and segmentation on hand-made probabilities: where boundaries fall, what flicker becomes."""

from __future__ import annotations

import numpy as np
import pytest

from har_core.runtime.confidence import NO_ACTION
from har_core.runtime.timeline import RunningSmoother, current_action, segments, smooth, smoothed_confidence

LABELS = ["a", "b", "c"]


def one_hot(winners: list[int], strength: float = 0.8) -> np.ndarray:
    rows = np.full((len(winners), len(LABELS)), (1 - strength) / (len(LABELS) - 1))
    rows[np.arange(len(winners)), winners] = strength
    return rows


def test_smoothing_averages_a_centred_window_and_leaves_its_input_alone():
    probabilities = one_hot([0, 0, 1, 0, 0])
    before = probabilities.copy()
    smoothed = smooth(probabilities, 3)
    np.testing.assert_array_equal(probabilities, before)
    np.testing.assert_allclose(smoothed[2], probabilities[1:4].mean(axis=0))
    np.testing.assert_allclose(smoothed[0], probabilities[0:2].mean(axis=0))  # the edge averages what exists
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0)
    assert smoothed[2].argmax() == 0  # the one-frame flicker is gone
    np.testing.assert_array_equal(smooth(probabilities, 1), probabilities)


def test_a_change_of_label_gives_two_segments_with_the_boundary_halfway():
    times = np.arange(10) * 0.5
    probabilities = one_hot([0] * 6 + [2] * 4)
    found = segments(times, probabilities, probabilities, LABELS, min_segment_s=1.0, end_s=5.0)
    assert [(s.label, s.start_s, s.end_s, s.frames) for s in found] == [("a", 0.0, 2.75, 6), ("c", 2.75, 5.0, 4)]
    assert found[0].mean_score == pytest.approx(0.8)


def test_runs_shorter_than_the_minimum_join_the_neighbour_they_resemble_most():
    times = np.arange(12) * 0.5
    winners = [0] * 5 + [1] + [0] * 3 + [2] * 3
    probabilities = one_hot(winners)
    probabilities[5, 0] = 0.15  # the flicker frame still leans to `a` more than to `c`
    probabilities[5, 2] = 0.05
    found = segments(times, probabilities, probabilities, LABELS, min_segment_s=1.0, end_s=6.0)
    assert [(s.label, s.frames) for s in found] == [("a", 9), ("c", 3)]
    assert found[0].mean_score == pytest.approx((8 * 0.8 + 0.15) / 9)
    kept = segments(times, probabilities, probabilities, LABELS, min_segment_s=0.0, end_s=6.0)
    assert [s.label for s in kept] == ["a", "b", "a", "c"]


def test_one_label_throughout_is_one_segment_over_the_whole_video():
    probabilities = one_hot([1] * 4)
    found = segments([0.0, 0.5, 1.0, 1.5], probabilities, probabilities, LABELS, min_segment_s=5.0, end_s=1.9)
    assert [(s.label, s.start_s, s.end_s) for s in found] == [("b", 0.0, 1.9)]
    assert segments([], np.zeros((0, 3)), np.zeros((0, 3)), LABELS, 1.0, 0.0) == []


def test_running_smoothers_follow_a_change_at_their_configured_pace():
    from har_core.runtime.timeline import RunningSmoother

    before, after = one_hot([0])[0], one_hot([2])[0]
    ema = RunningSmoother("ema", alpha=0.5)
    assert ema.update(before).argmax() == 0
    first = ema.update(after)
    np.testing.assert_allclose(first, 0.5 * after + 0.5 * before)
    assert ema.update(after).argmax() == 2  # 0.75 of the way after two frames
    window = RunningSmoother("window", window=3)
    for row in (before, before, after):
        smoothed = window.update(row)
    np.testing.assert_allclose(smoothed, (2 * before + after) / 3)
    assert window.update(after).argmax() == 2 and window.update(after)[0] == pytest.approx(after[0])
    with pytest.raises(ValueError, match="smoothing must be"):
        RunningSmoother("median")


def test_a_boundary_shifted_by_smoothing_is_moved_back_to_where_the_raw_scores_change():
    """A weak `a` next to a strong `c`: the smoothed label turns `c` a frame early; refining undoes it."""
    times = np.arange(10) * 0.5
    weak_a = np.array([0.40, 0.35, 0.25])
    strong_c = np.array([0.05, 0.05, 0.90])
    probabilities = np.array([weak_a] * 6 + [strong_c] * 4)
    smoothed = smooth(probabilities, 3)
    assert smoothed[5].argmax() == 2  # the last `a` frame already reads `c` after smoothing
    shifted = segments(times, probabilities, smoothed, LABELS, min_segment_s=0.0, end_s=5.0)
    refined = segments(times, probabilities, smoothed, LABELS, min_segment_s=0.0, end_s=5.0, refine=1)
    assert [(s.label, s.end_s) for s in shifted][0] == ("a", 2.25)
    assert [(s.label, s.start_s, s.end_s, s.frames) for s in refined] == [("a", 0.0, 2.75, 6), ("c", 2.75, 5.0, 4)]


def test_below_the_threshold_a_stretch_is_no_action_and_a_short_dip_is_merged_away():
    """A "no action" stretch runs, merges and is cut like a label; without a threshold (no calibration) it is named."""
    times = np.arange(12) * 0.5
    unsure = [0.40, 0.35, 0.25]
    probabilities = np.array([one_hot([0])[0]] * 4 + [unsure] * 4 + [one_hot([2])[0]] * 4)
    found = segments(times, probabilities, probabilities, LABELS, min_segment_s=1.0, end_s=6.0, abstain_below=0.5)
    assert [(s.label, s.start_s, s.end_s, s.frames) for s in found] == [
        ("a", 0.0, 1.75, 4), (NO_ACTION, 1.75, 3.75, 4), ("c", 3.75, 6.0, 4),
    ]  # fmt: skip
    assert found[1].mean_score == pytest.approx(0.40)  # the mean top-1 of its frames
    named = segments(times, probabilities, probabilities, LABELS, min_segment_s=1.0, end_s=6.0)
    assert [(s.label, s.frames) for s in named] == [("a", 8), ("c", 4)]

    dip = one_hot([0] * 6 + [2] * 6)
    dip[3] = [0.45, 0.30, 0.25]  # one frame of 0.5 s below the threshold: shorter than the minimum
    merged = segments(times, dip, dip, LABELS, min_segment_s=1.0, end_s=6.0, abstain_below=0.5)
    assert [(s.label, s.frames) for s in merged] == [("a", 6), ("c", 6)]


def test_a_change_between_two_sure_actions_is_not_no_action():
    """Smoothing a sure `a` into a sure `c` gives rows unsure of both; the frames themselves were sure, and the
    smoothed confidence (their own top-1s averaged) says so."""
    times = np.arange(10) * 0.5
    probabilities = one_hot([0] * 5 + [2] * 5, strength=0.6)  # others 0.2: a 50/50 average is 0.4 for both
    smoothed = smooth(probabilities, 3)
    confidence = smoothed_confidence(probabilities, 3)
    np.testing.assert_allclose(confidence, 0.6)
    assert smoothed.max(axis=1).min() < 0.5  # the top-1 of the average dips at the change
    cut = dict(min_segment_s=0.0, end_s=5.0, abstain_below=0.5)
    kept = segments(times, probabilities, smoothed, LABELS, **cut, confidence=confidence)
    assert [s.label for s in kept] == ["a", "c"]
    dipped = segments(times, probabilities, smoothed, LABELS, **cut)  # by the top-1 of the average instead
    assert NO_ACTION in [s.label for s in dipped]


def test_the_live_camera_shows_no_action_while_its_smoothed_confidence_is_below_the_threshold():
    smoother = RunningSmoother("ema", alpha=0.5)
    assert smoother.action(LABELS, 0.5) is None and smoother.confidence is None
    smoother.update(np.array([0.8, 0.1, 0.1]))
    assert smoother.action(LABELS, 0.5) == ("a", pytest.approx(0.8))
    smoother.update(np.array([0.1, 0.1, 0.8]))  # a change between sure actions: still sure
    assert smoother.confidence == pytest.approx(0.8) and smoother.action(LABELS, 0.5)[0] in ("a", "c")
    smoother.update(np.array([0.30, 0.35, 0.35]))
    smoother.update(np.array([0.30, 0.35, 0.35]))
    assert smoother.action(LABELS, 0.5) == (NO_ACTION, pytest.approx(0.8 / 4 + 0.35 * 3 / 4))
    assert smoother.action(LABELS, None)[0] == "c"  # no calibration: never "no action"
    window = RunningSmoother("window", window=2)
    window.update(np.array([0.50, 0.30, 0.20]))
    assert window.action(LABELS, 0.5) == ("a", pytest.approx(0.5))  # at the threshold: answered
    window.update(np.array([0.60, 0.20, 0.20]))
    row = window.update(np.array([0.20, 0.20, 0.60]))  # a change: the average is unsure, the frames were not
    assert current_action(row, LABELS, 0.5) == (NO_ACTION, pytest.approx(0.4))  # by the top-1 of the average
    assert window.confidence == pytest.approx(0.6) and window.action(LABELS, 0.5) == ("a", pytest.approx(0.4))
