"""What a model version's answers look like on data it was validated on: the baseline monitoring compares with.

Saved at training by the calibrate step (the validation split's image embeddings, predicted labels and calibrated
top-1 probabilities, for at most `MAX_REFERENCE_IMAGES` images), carried by every export and so by the Bento, so
that monitoring needs nothing else from the training side. Torch-free: one safetensors file, no pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REFERENCE_FILE = "monitoring_reference.safetensors"
MAX_REFERENCE_IMAGES = 4096  # 8 MB of ViT-B/16 embeddings at most


@dataclass(frozen=True)
class MonitoringReference:
    """Per validation image: its embedding, the label the model predicted and its calibrated confidence."""

    labels: tuple[str, ...]
    split: str
    embeddings: np.ndarray  # (images, dim) float32, normalised
    predicted: np.ndarray  # (images,) int64: index into `labels`
    confidence: np.ndarray  # (images,) float32: calibrated top-1 probability

    def __post_init__(self) -> None:
        count = len(self.predicted)
        if self.embeddings.shape[0] != count or self.confidence.shape != (count,) or count == 0:
            raise ValueError(
                f"A monitoring reference needs as many embeddings, predictions and confidences as images, and at "
                f"least one image: got {self.embeddings.shape}, {self.predicted.shape}, {self.confidence.shape}."
            )

    def label_distribution(self) -> dict[str, float]:
        """Share of the reference images predicted as each label (every label present, zero included)."""
        counts = np.bincount(self.predicted, minlength=len(self.labels))
        return {label: float(count / len(self.predicted)) for label, count in zip(self.labels, counts, strict=True)}

    def median_confidence(self) -> float:
        return float(np.median(self.confidence))

    def summary(self) -> dict[str, object]:
        """What `/metadata` and run metadata show: size, split, median confidence and the label distribution."""
        return {
            "images": len(self.predicted),
            "split": self.split,
            "median_confidence": self.median_confidence(),
            "label_distribution": self.label_distribution(),
        }

    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        tensors = {
            "embeddings": np.ascontiguousarray(self.embeddings, np.float32),
            "predicted": np.ascontiguousarray(self.predicted, np.int64),
            "confidence": np.ascontiguousarray(self.confidence, np.float32),
        }
        save_file(tensors, str(path), metadata={"labels": json.dumps(list(self.labels)), "split": self.split})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> MonitoringReference:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in ("embeddings", "predicted", "confidence")}
        if "labels" not in metadata:
            raise ValueError(f"{path} is not a monitoring reference: its metadata names no labels.")
        return cls(labels=tuple(json.loads(metadata["labels"])), split=metadata.get("split", "val"), **tensors)


def build_reference(
    labels: tuple[str, ...],
    split: str,
    embeddings: np.ndarray,
    probabilities: np.ndarray,
    seed: int = 0,
    limit: int = MAX_REFERENCE_IMAGES,
) -> MonitoringReference:
    """The reference of calibrated `probabilities` (images, labels) and their embeddings; a seeded sample of `limit`
    images when there are more."""
    keep = np.arange(len(probabilities))
    if len(keep) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(keep, limit, replace=False))
    chosen = np.asarray(probabilities)[keep]
    return MonitoringReference(
        labels=tuple(labels),
        split=split,
        embeddings=np.asarray(embeddings, np.float32)[keep],
        predicted=chosen.argmax(axis=1).astype(np.int64),
        confidence=chosen.max(axis=1).astype(np.float32),
    )
