"""What a probability means: temperature scaling, calibration error, and the threshold below which to abstain.

Temperature scaling (Guo et al., 2017) divides the logits by one scalar T fitted by minimising the negative log
likelihood on held-out data; it changes no prediction (top-1 agreement and embeddings are untouched), only how sure
the softmax says it is. The fit runs in torch (L-BFGS on log T, float64): torch is what the training side already
imports, and the fit is the one the paper's reference code runs. Everything else here is numpy, on probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from har_core.config import CalibrationConfig
from har_core.runtime.confidence import Calibration, OodStatistics, ood_scores, softmax

ECE_BINS = 15


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 200) -> float:
    """The T > 0 that minimises the NLL of softmax(logits / T) against `labels` (class indices)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(labels) or len(labels) == 0:
        raise ValueError(
            f"fit_temperature needs (n, classes) logits and n labels, got {logits.shape} and {labels.shape}"
        )
    z, y = torch.from_numpy(logits), torch.from_numpy(labels)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean −log p(true label)."""
    picked = np.asarray(probabilities)[np.arange(len(labels)), np.asarray(labels)]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean())


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of a reliability diagram: its range, how many predictions, their confidence and accuracy."""

    lower: float
    upper: float
    count: int
    confidence: float  # mean top-1 probability in the bin (0 when empty)
    accuracy: float  # share of correct top-1 predictions in the bin (0 when empty)


def reliability_bins(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[ReliabilityBin]:
    """Equal-width bins of the top-1 probability over [0, 1] (a top-1 of exactly 1 falls in the last bin)."""
    probabilities = np.asarray(probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    result = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        result.append(
            ReliabilityBin(
                lower=float(edges[b]),
                upper=float(edges[b + 1]),
                count=count,
                confidence=float(confidence[members].mean()) if count else 0.0,
                accuracy=float(correct[members].mean()) if count else 0.0,
            )
        )
    return result


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the reliability bins."""
    table = reliability_bins(probabilities, labels, bins)
    total = sum(b.count for b in table)
    return float(sum(b.count * abs(b.accuracy - b.confidence) for b in table) / max(total, 1))


def abstention_threshold(probabilities: np.ndarray, coverage: float) -> float:
    """The top-1 probability τ at which answering only when top-1 ≥ τ keeps `coverage` of these predictions."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    confidence = np.sort(np.asarray(probabilities).max(axis=1))[::-1]
    kept = max(1, int(np.ceil(coverage * len(confidence))))
    return float(confidence[kept - 1])


@dataclass(frozen=True)
class SelectiveResult:
    """Answering only when sure: the share answered and the accuracy on those."""

    threshold: float
    coverage: float
    accuracy: float  # on the answered ones (nan when none is answered)


def selective_accuracy(probabilities: np.ndarray, labels: np.ndarray, threshold: float) -> SelectiveResult:
    probabilities = np.asarray(probabilities)
    answered = probabilities.max(axis=1) >= threshold
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    accuracy = float(correct[answered].mean()) if answered.any() else float("nan")
    return SelectiveResult(threshold=float(threshold), coverage=float(answered.mean()), accuracy=accuracy)


def risk_coverage_auc(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Area under the risk–coverage curve: the error rate of the k most confident answers, averaged over k = 1..n.

    Lower is better; a confidence that ranks every mistake last scores the least a model with its accuracy can."""
    probabilities = np.asarray(probabilities)
    order = np.argsort(-probabilities.max(axis=1), kind="stable")
    wrong = (probabilities.argmax(axis=1) != np.asarray(labels))[order]
    risks = np.cumsum(wrong) / np.arange(1, len(wrong) + 1)
    return float(risks.mean())


def fit_zero_shot_temperature(
    logits: np.ndarray, labels: np.ndarray, subsets_per_image: int, seed: int, max_iter: int = 200
) -> tuple[float, np.ndarray]:
    """The temperature for custom label sets, and the top-1 probabilities it gives on the simulated sets.

    A custom label set is smaller than the model's and a softmax over fewer labels is surer, so one temperature
    cannot serve both. Each image is scored against `subsets_per_image` random label subsets holding its true label,
    of every size from 2 to all labels alike; the temperature minimises the NLL over those rows (masked labels take
    no probability)."""
    z, keep, y = _label_subsets(logits, labels, subsets_per_image, seed)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy((z / log_t.exp()).masked_fill(~keep, float("-inf")), y)
        loss.backward()
        return loss

    optimizer.step(closure)
    temperature = float(log_t.detach().exp())
    return temperature, subset_top1(logits, labels, temperature, subsets_per_image, seed)


def subset_top1(
    logits: np.ndarray, labels: np.ndarray, temperature: float, subsets_per_image: int, seed: int
) -> np.ndarray:
    """The top-1 probability of every simulated custom label set (see `fit_zero_shot_temperature`) at `temperature`."""
    z, keep, _ = _label_subsets(logits, labels, subsets_per_image, seed)
    with torch.no_grad():
        return torch.softmax((z / temperature).masked_fill(~keep, float("-inf")), dim=1).max(dim=1).values.numpy()


def _label_subsets(
    logits: np.ndarray, labels: np.ndarray, subsets_per_image: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits repeated per subset, which labels each subset holds, true labels): the same draw for one seed."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    classes = logits.shape[1]
    rows, masks, truths = [], [], []
    for row, truth in zip(logits, labels, strict=True):
        others = np.delete(np.arange(classes), truth)
        for _ in range(subsets_per_image):
            size = int(rng.integers(2, classes + 1))
            mask = np.zeros(classes, dtype=bool)
            mask[truth] = True
            mask[rng.choice(others, size - 1, replace=False)] = True
            rows.append(row)
            masks.append(mask)
            truths.append(truth)
    return torch.from_numpy(np.stack(rows)), torch.from_numpy(np.stack(masks)), torch.from_numpy(np.array(truths))


def fit_calibration(
    logits: np.ndarray,
    labels: np.ndarray,
    logit_scale: float,
    config: CalibrationConfig,
    split: str,
    temperature: float | None = None,
    embeddings: np.ndarray | None = None,
    statistics: OodStatistics | None = None,
) -> Calibration:
    """Everything a served answer's verdict needs, fitted on one held-out split's raw logits and true labels (and,
    for the `mahalanobis` score, its image embeddings and the training images' `statistics`).

    `temperature` given: kept (for both label kinds) and only the thresholds fitted; an untrained model has nothing
    to calibrate (its fit sends T to infinity: every probability 1 / labels)."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    if temperature is None:
        temperature = fit_temperature(logits, labels)
        zero_shot_temperature, zero_shot_top1 = fit_zero_shot_temperature(
            logits, labels, config.zero_shot_subsets, config.seed
        )
    else:
        zero_shot_temperature = temperature
        zero_shot_top1 = subset_top1(logits, labels, temperature, config.zero_shot_subsets, config.seed)
    calibrated = softmax(logits, temperature)
    scores = ood_scores(logits, logit_scale, config.ood_score, temperature, embeddings, statistics)
    return Calibration(
        temperature=temperature,
        abstain_below=abstention_threshold(calibrated, config.coverage),
        zero_shot_temperature=zero_shot_temperature,
        zero_shot_abstain_below=abstention_threshold(zero_shot_top1[:, None], config.coverage),
        coverage=config.coverage,
        ood_score=config.ood_score,
        ood_above=float(np.quantile(scores, config.ood_in_distribution)),
        split=split,
        num_images=len(labels),
    )


def fit_ood_statistics(embeddings: np.ndarray, labels: np.ndarray, classes: int) -> OodStatistics:
    """Class means and the shared precision of (training) image embeddings, for the Mahalanobis score.

    The covariance of the class-centred embeddings is Ledoit–Wolf shrunk (scikit-learn): a ViT-B/16 embedding has
    512 dimensions, and a few thousand images estimate that many poorly; shrinkage keeps the precision stable."""
    from sklearn.covariance import LedoitWolf  # ~1 s of imports, only where a calibration is fitted

    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels)
    missing = sorted(set(range(classes)) - set(labels.tolist()))
    if missing:
        raise ValueError(f"The out-of-distribution statistics need images of every class; none of classes {missing}.")
    means = np.stack([embeddings[labels == index].mean(axis=0) for index in range(classes)])
    precision = LedoitWolf(assume_centered=True).fit(embeddings - means[labels]).precision_
    return OodStatistics(class_means=means.astype(np.float32), precision=precision.astype(np.float32))


def ood_auroc(in_distribution: np.ndarray, out_of_distribution: np.ndarray) -> float:
    """AUROC of telling the two apart by the score (higher: out of distribution); 0.5 is chance, 1 perfect."""
    from sklearn.metrics import roc_auc_score  # ~1 s of imports, only where a report is made

    scores = np.concatenate([in_distribution, out_of_distribution])
    truth = np.concatenate([np.zeros(len(in_distribution)), np.ones(len(out_of_distribution))])
    return float(roc_auc_score(truth, scores))


def calibration_metrics(
    logits: np.ndarray, labels: np.ndarray, calibration: Calibration
) -> tuple[dict[str, float], list[ReliabilityBin], list[ReliabilityBin]]:
    """Test-split figures before and after the temperature, at the fitted threshold; plus both reliability tables."""
    before, after = softmax(logits), softmax(logits, calibration.temperature)
    selective = selective_accuracy(after, labels, calibration.abstain_below)
    metrics = {
        "ece_before": expected_calibration_error(before, labels),
        "ece_after": expected_calibration_error(after, labels),
        "nll_before": negative_log_likelihood(before, labels),
        "nll_after": negative_log_likelihood(after, labels),
        "temperature": calibration.temperature,
        "zero_shot_temperature": calibration.zero_shot_temperature,
        "abstain_below": calibration.abstain_below,
        "target_coverage": calibration.coverage,
        "coverage": selective.coverage,
        "selective_accuracy": selective.accuracy,
        "accuracy": float((after.argmax(axis=1) == np.asarray(labels)).mean()),
        "risk_coverage_auc": risk_coverage_auc(after, labels),
    }
    if np.isnan(selective.accuracy):  # nothing answered: no accuracy to report (and NaN is no JSON metadata)
        del metrics["selective_accuracy"]
    return metrics, reliability_bins(before, labels), reliability_bins(after, labels)
