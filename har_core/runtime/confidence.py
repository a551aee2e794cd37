"""What a served probability means: the calibration an export carries, and the per-image verdict built from it.

Torch-free (numpy + pydantic): the `Predictor`, the Bento, the viewer and batch inference all apply one
`Calibration`, fitted after fine-tuning on the validation split (`har_core.evaluation.calibration.fit_calibration`):

- `temperature` divides the logits over the model's own labels before the softmax (temperature scaling);
- `zero_shot_temperature` divides them for custom labels (`/classify`, the viewer's label box): fitted on the same
  split through the prompt templates, on label subsets of the sizes custom label sets have, since a softmax over
  fewer labels is surer of itself;
- below `abstain_below` (or `zero_shot_abstain_below` for custom labels) the top-1 probability is too low to name
  an action: the answer is "no action", with the ranked labels still returned;
- `ood_score` says how unlike the training images an image is (see `ood_scores`), flagged above `ood_above`; the
  default, `mahalanobis`, reads the export's `OodStatistics` (class means and tied precision of the training
  images' embeddings, a file beside the model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from har_core.runtime.labels import NO_ACTION

OodScoreName = Literal["mahalanobis", "max_cosine", "max_probability"]
OOD_STATISTICS_FILE = "ood_statistics.safetensors"


@dataclass(frozen=True)
class OodStatistics:
    """Where the training images' embeddings lie: one mean per class and the precision (inverse covariance) they
    share, for the Mahalanobis out-of-distribution score (Lee et al., 2018)."""

    class_means: np.ndarray  # (labels, dim) float32
    precision: np.ndarray  # (dim, dim) float32, symmetric positive definite

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        """Per image, the squared Mahalanobis distance to the nearest class mean, expanded as
        xᵀPx − 2xᵀPμ + μᵀPμ so an image costs one d×d product, not one per class."""
        x = np.asarray(embeddings, dtype=np.float64)
        precision, means = self.precision.astype(np.float64), self.class_means.astype(np.float64)
        projected_means = means @ precision  # (labels, dim): Pμ per class (P is symmetric)
        own = np.einsum("nd,nd->n", x @ precision, x)
        offsets = np.einsum("kd,kd->k", projected_means, means)
        return np.maximum(own[:, None] - 2 * x @ projected_means.T + offsets[None], 0.0).min(axis=1)

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        tensors = {"class_means": self.class_means, "precision": self.precision}
        save_file({key: np.ascontiguousarray(value, np.float32) for key, value in tensors.items()}, str(path))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> OodStatistics:
        from safetensors.numpy import load_file

        tensors = load_file(str(path))
        return cls(class_means=tensors["class_means"], precision=tensors["precision"])


class Calibration(BaseModel):
    """One model's fitted temperatures, abstention thresholds and out-of-distribution threshold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(gt=0)
    abstain_below: float = Field(ge=0, le=1)  # on the calibrated top-1 probability over the model's labels
    zero_shot_temperature: float = Field(gt=0)
    zero_shot_abstain_below: float = Field(ge=0, le=1)  # on the top-1 over custom labels
    coverage: float = Field(gt=0, le=1)  # the share of validation images each threshold answers
    ood_score: OodScoreName = "mahalanobis"
    ood_above: float  # images scoring above it are flagged out of distribution
    split: str = "val"
    num_images: int = Field(ge=1)

    def temperature_for(self, custom_labels: bool) -> float:
        return self.zero_shot_temperature if custom_labels else self.temperature

    def threshold_for(self, custom_labels: bool) -> float:
        return self.zero_shot_abstain_below if custom_labels else self.abstain_below


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, numerically stable, in the logits' float type (at least float32)."""
    scaled = np.asarray(logits, dtype=np.result_type(logits, np.float32)) / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def ood_scores(
    logits: np.ndarray,
    logit_scale: float,
    name: OodScoreName,
    temperature: float = 1.0,
    embeddings: np.ndarray | None = None,
    statistics: OodStatistics | None = None,
) -> np.ndarray:
    """Per-image out-of-distribution score from the image's outputs over the model's own labels; higher is stranger.

    `mahalanobis`: the squared Mahalanobis distance of the embedding to the nearest training class mean (needs
    `embeddings` and `statistics`). `max_cosine`: 1 − the best cosine similarity between the image and a class's text
    embedding (logits / logit_scale). `max_probability`: 1 − the calibrated top-1 probability (MCM at the fitted
    temperature; the same signal as abstention). Which one serves is the calibration's `ood_score`, chosen by the
    AUROCs measured in `docs/confidence.md`.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if name == "mahalanobis":
        if embeddings is None or statistics is None:
            raise ValueError("The mahalanobis out-of-distribution score needs the image embeddings and OodStatistics.")
        return statistics.distances(embeddings)
    if name == "max_cosine":
        return 1.0 - logits.max(axis=1) / logit_scale
    return 1.0 - softmax(logits, temperature).max(axis=1)


class Verdict(BaseModel):
    """What a calibrated answer says beyond its ranked labels: whether to name an action, and how unusual the image is.

    Without a calibration (exports written before it existed) nothing abstains and no score is given."""

    model_config = ConfigDict(frozen=True)

    abstained: bool = Field(False, description=f'True: top-1 below the abstention threshold; show "{NO_ACTION}".')
    confidence: float = Field(description="The calibrated top-1 probability.")
    ood_score: float | None = Field(None, description="How unlike the training images (higher: stranger).")
    out_of_distribution: bool = Field(False, description="ood_score above the threshold fitted on validation.")


def verdicts(
    calibration: Calibration | None, probabilities: np.ndarray, scores: np.ndarray | None, custom_labels: bool
) -> list[Verdict]:
    """One `Verdict` per row of calibrated `probabilities`, with each image's out-of-distribution score (`scores`,
    from `ood_scores`; None without a calibration)."""
    confidence = np.asarray(probabilities).max(axis=1)
    if calibration is None or scores is None:
        return [Verdict(confidence=float(c)) for c in confidence]
    threshold = calibration.threshold_for(custom_labels)
    return [
        Verdict(
            abstained=bool(c < threshold),
            confidence=float(c),
            ood_score=float(s),
            out_of_distribution=bool(s > calibration.ood_above),
        )
        for c, s in zip(confidence, scores, strict=True)
    ]


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Per row of calibrated `probabilities`, the top-1 minus the top-2 probability: how far the answer leads its
    runner-up, which monitoring watches shrink before accuracy falls (the top-1 itself when there is one label)."""
    rows = np.asarray(probabilities)
    if rows.shape[1] == 1:
        return rows[:, 0].copy()
    best_two = np.partition(rows, -2, axis=1)[:, -2:]  # [:, -1] is the largest, [:, -2] the second
    return best_two[:, 1] - best_two[:, 0]
