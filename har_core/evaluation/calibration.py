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


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, numerically stable, float64."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


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
