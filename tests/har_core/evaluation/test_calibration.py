"""Temperature scaling and the calibration metrics on constructed data whose answer is known."""

import numpy as np
import pytest

from har_core.evaluation.calibration import (
    abstention_threshold,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
    risk_coverage_auc,
    selective_accuracy,
    softmax,
)


def calibrated_sample(n: int = 20000, classes: int = 15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits): perfectly calibrated at T = 1 by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.5, size=(n, classes))
    probabilities = softmax(logits)
    labels = np.array([rng.choice(classes, p=row) for row in probabilities])
    return logits, labels


@pytest.mark.parametrize("true_temperature", [0.4, 1.0, 2.5, 60.0])
def test_the_fit_recovers_a_known_temperature_within_five_percent(true_temperature):
    """Logits scaled by 1/T of calibrated ones: the fit must find T (60: CLIP's logit scale over-sharpens this much)."""
    logits, labels = calibrated_sample()
    fitted = fit_temperature(logits * true_temperature, labels)
    assert abs(fitted - true_temperature) / true_temperature < 0.05, fitted


def test_scaling_lowers_the_calibration_error_and_keeps_every_prediction():
    logits, labels = calibrated_sample(seed=1)
    overconfident = logits * 3.0
    before = softmax(overconfident)
    after = softmax(overconfident, fit_temperature(overconfident, labels))
    assert (before.argmax(axis=1) == after.argmax(axis=1)).all()
    assert expected_calibration_error(after, labels) < 0.02 < expected_calibration_error(before, labels)
    assert negative_log_likelihood(after, labels) < negative_log_likelihood(before, labels)


def test_reliability_bins_count_every_prediction_once():
    logits, labels = calibrated_sample(n=3000, seed=2)
    probabilities = softmax(logits)
    table = reliability_bins(probabilities, labels)
    assert len(table) == 15 and sum(b.count for b in table) == len(labels)
    assert all(b.lower <= b.confidence <= b.upper for b in table if b.count)
    certain = np.eye(3)[[0, 1, 2]]  # top-1 of exactly 1.0 lands in the last bin
    assert reliability_bins(certain, np.array([0, 1, 2]))[-1].count == 3


def test_the_threshold_keeps_the_asked_coverage_and_answers_better_than_all():
    logits, labels = calibrated_sample(seed=3)
    probabilities = softmax(logits)
    threshold = abstention_threshold(probabilities, coverage=0.8)
    result = selective_accuracy(probabilities, labels, threshold)
    everything = selective_accuracy(probabilities, labels, 0.0)
    assert abs(result.coverage - 0.8) < 0.005 and everything.coverage == 1.0
    assert result.accuracy > everything.accuracy
    with pytest.raises(ValueError, match="coverage"):
        abstention_threshold(probabilities, coverage=0.0)


def test_a_confidence_that_ranks_mistakes_last_has_the_lower_risk_coverage_area():
    logits, labels = calibrated_sample(n=5000, seed=4)
    probabilities = softmax(logits)
    shuffled = probabilities[np.random.default_rng(5).permutation(len(probabilities))]
    # the same predictions in another order of confidence: keep each row's argmax, scramble which rows are sure
    informed = risk_coverage_auc(probabilities, labels)
    uninformed = risk_coverage_auc(
        np.where(np.eye(probabilities.shape[1])[probabilities.argmax(1)] == 1, shuffled.max(1, keepdims=True), 0.0),
        labels,
    )
    assert informed < uninformed


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match="logits"):
        fit_temperature(np.zeros(5), np.zeros(5, dtype=int))
