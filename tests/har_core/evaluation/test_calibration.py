"""Temperature scaling and the calibration metrics on constructed data whose answer is known."""

import numpy as np
import pytest

from har_core.config import CalibrationConfig, EvaluationConfig
from har_core.evaluation.calibration import (
    abstention_threshold,
    expected_calibration_error,
    fit_calibration,
    fit_ood_statistics,
    fit_temperature,
    fit_zero_shot_temperature,
    negative_log_likelihood,
    ood_auroc,
    reliability_bins,
    risk_coverage_auc,
    selective_accuracy,
    softmax,
)
from har_core.runtime.confidence import ood_scores


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


COSINE = CalibrationConfig(ood_score="max_cosine")  # constructed logits have no embeddings


def test_a_fitted_calibration_keeps_its_coverage_and_flags_its_share_as_out_of_distribution():
    logits, labels = calibrated_sample(n=4000)
    overconfident = logits * 3.0
    calibration = fit_calibration(overconfident, labels, 100.0, COSINE.model_copy(update={"coverage": 0.9}), "val")
    assert abs(calibration.temperature - 3.0) / 3.0 < 0.05
    answered = softmax(overconfident, calibration.temperature).max(axis=1) >= calibration.abstain_below
    assert answered.mean() == pytest.approx(0.9, abs=0.005)
    scores = ood_scores(overconfident, 100.0, "max_cosine")
    assert (scores <= calibration.ood_above).mean() == pytest.approx(0.95, abs=0.005)
    assert (calibration.split, calibration.num_images, calibration.coverage) == ("val", 4000, 0.9)


def test_custom_label_sets_get_their_own_temperature_and_a_surer_threshold():
    """Softmax over a few labels is surer than over all: the simulated custom sets' threshold sits higher, and the
    zero-shot fit is its own number (the subsets' NLL, not the full rows')."""
    logits, labels = calibrated_sample(n=3000)
    calibration = fit_calibration(logits, labels, 100.0, COSINE, "val")
    assert calibration.zero_shot_abstain_below > calibration.abstain_below
    assert calibration.zero_shot_temperature != calibration.temperature
    temperature, top1 = fit_zero_shot_temperature(logits, labels, subsets_per_image=2, seed=1)
    assert top1.shape == (6000,) and np.all((top1 > 0) & (top1 <= 1))
    assert temperature == pytest.approx(fit_zero_shot_temperature(logits, labels, 2, seed=1)[0])  # one draw per seed


def test_a_given_temperature_is_kept_and_only_the_thresholds_are_fitted():
    logits, labels = calibrated_sample(n=2000)
    calibration = fit_calibration(logits * 50, labels, 100.0, COSINE, "val", temperature=1.0)
    assert calibration.temperature == calibration.zero_shot_temperature == 1.0
    assert calibration.abstain_below == abstention_threshold(softmax(logits * 50), 0.95)


def test_calibration_is_never_fitted_on_the_evaluated_split():
    assert EvaluationConfig(split="val").calibration_split == "test"
    assert EvaluationConfig().calibration_split == "val"
    with pytest.raises(ValueError, match="the split being evaluated"):
        EvaluationConfig(split="test", calibration=CalibrationConfig(split="test"))


def test_mahalanobis_statistics_rank_points_away_from_every_class_as_stranger():
    """Three Gaussian classes in 8 dimensions: their own held-out points keep the fitted share in distribution, and
    points from a fourth, unseen cluster score far above them."""
    rng = np.random.default_rng(3)
    centres = rng.normal(0, 4, (4, 8))

    def draw(index, n):
        return centres[index] + rng.normal(0, 1, (n, 8))

    train = np.concatenate([draw(k, 400) for k in range(3)])
    labels = np.repeat(np.arange(3), 400)
    statistics = fit_ood_statistics(train, labels, 3)
    assert np.allclose(statistics.class_means, centres[:3], atol=0.2)
    held_out = np.concatenate([draw(k, 300) for k in range(3)])
    held_labels = np.repeat(np.arange(3), 300)
    logits = -statistics.distances(held_out)[:, None] + np.eye(3)[held_labels]  # only shapes matter here
    calibration = fit_calibration(
        logits, held_labels, 1.0, CalibrationConfig(), "val", embeddings=held_out, statistics=statistics
    )
    assert calibration.ood_score == "mahalanobis"
    assert (statistics.distances(held_out) > calibration.ood_above).mean() == pytest.approx(0.05, abs=0.005)
    unseen = statistics.distances(draw(3, 300))
    assert (unseen > calibration.ood_above).mean() > 0.99
    assert ood_auroc(statistics.distances(held_out), unseen) > 0.99
    with pytest.raises(ValueError, match="every class"):
        fit_ood_statistics(train[:400], labels[:400], 3)
