"""Scoring a classifier on a split: predictions, scikit-learn metrics, and report files."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from har_core.config import EvaluationConfig
from har_core.dataset import ImageClassificationDataset, ImageRecord
from har_core.device import resolve_device
from har_core.model import HarClipClassifier


class EvaluationReport(BaseModel):
    """Headline metrics, per-class figures and the confusion matrix (rows: true label, columns: predicted)."""

    split: str
    num_images: int
    labels: list[str]
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    weighted_precision: float
    weighted_recall: float
    weighted_f1: float
    per_class_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]
    classification_report: dict[str, dict[str, float]]

    def headline_metrics(self) -> dict[str, float]:
        """The scalar metrics, for experiment trackers and run metadata."""
        return {
            name: getattr(self, name)
            for name in (
                "accuracy",
                "macro_precision",
                "macro_recall",
                "macro_f1",
                "weighted_precision",
                "weighted_recall",
                "weighted_f1",
            )
        }

    def normalized_confusion_matrix(self) -> np.ndarray:
        """Row-normalised confusion matrix (each true label's row sums to 1; empty rows stay 0)."""
        counts = np.asarray(self.confusion_matrix, dtype=np.float64)
        totals = counts.sum(axis=1, keepdims=True)
        return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


@torch.no_grad()
def collect_logits(
    model: HarClipClassifier, loader: DataLoader, device: torch.device, autocast_dtype: torch.dtype | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 logits and labels for every batch of `loader`, on the CPU, with the model in eval mode."""
    model.eval()
    all_logits, all_labels = [], []
    for pixel_values, labels in tqdm(loader, desc="Evaluating", unit="batch", leave=False):
        with torch.autocast(device.type, autocast_dtype, enabled=autocast_dtype is not None):
            all_logits.append(model(pixel_values.to(device)).float().cpu())
        all_labels.append(labels)
    return torch.cat(all_logits), torch.cat(all_labels)


def predict(
    model: HarClipClassifier, records: Sequence[ImageRecord], config: EvaluationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted label indices for `records`."""
    device = resolve_device(config.device)
    dataset = ImageClassificationDataset(records, model.preprocess_config)
    loader = DataLoader(dataset, batch_size=config.batch_size, num_workers=config.num_workers)
    logits, labels = collect_logits(model.to(device), loader, device)
    return labels.numpy(), logits.argmax(dim=-1).numpy()


def compute_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], split: str) -> EvaluationReport:
    """All metrics from label indices; labels absent from the split score 0 rather than raising."""
    indices = list(range(len(labels)))
    macro = precision_recall_fscore_support(y_true, y_pred, labels=indices, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(y_true, y_pred, labels=indices, average="weighted", zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=indices)
    row_totals = matrix.sum(axis=1)
    per_class = {
        label: float(matrix[index, index] / row_totals[index]) if row_totals[index] else 0.0
        for index, label in enumerate(labels)
    }
    report = classification_report(
        y_true, y_pred, labels=indices, target_names=list(labels), output_dict=True, zero_division=0
    )
    report = {name: values for name, values in report.items() if isinstance(values, dict)}
    return EvaluationReport(
        split=split,
        num_images=int(len(y_true)),
        labels=list(labels),
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_precision=float(macro[0]),
        macro_recall=float(macro[1]),
        macro_f1=float(macro[2]),
        weighted_precision=float(weighted[0]),
        weighted_recall=float(weighted[1]),
        weighted_f1=float(weighted[2]),
        per_class_accuracy=per_class,
        confusion_matrix=matrix.tolist(),
        classification_report={name: {k: float(v) for k, v in values.items()} for name, values in report.items()},
    )


def evaluate_classifier(
    model: HarClipClassifier, records: Sequence[ImageRecord], config: EvaluationConfig
) -> EvaluationReport:
    """Predict on `records` and score them; works the same for a zero-shot and a fine-tuned model."""
    if not records:
        raise ValueError(f"The {config.split} split is empty; there is nothing to evaluate.")
    y_true, y_pred = predict(model, records, config)
    return compute_report(y_true, y_pred, model.labels, config.split)


def write_report_files(report: EvaluationReport, directory: str | Path) -> dict[str, Path]:
    """`report.json` (everything) and `classification_report.csv` (one row per class and average)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    json_path.write_text(report.model_dump_json(indent=2))
    csv_path = directory / "classification_report.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["class", "precision", "recall", "f1-score", "support"])
        for name, values in report.classification_report.items():
            writer.writerow([name, *(values.get(key, "") for key in ("precision", "recall", "f1-score", "support"))])
    return {"json": json_path, "csv": csv_path}


def per_class_rows(report: EvaluationReport) -> list[dict[str, float | str]]:
    """One row per class (precision, recall, f1, accuracy, support), for tracker tables."""
    rows = []
    for label in report.labels:
        row = report.classification_report.get(label, {})
        rows.append(
            {
                "class": label,
                "precision": row.get("precision", 0.0),
                "recall": row.get("recall", 0.0),
                "f1": row.get("f1-score", 0.0),
                "accuracy": report.per_class_accuracy[label],
                "support": int(row.get("support", 0)),
            }
        )
    return rows


def load_report(path: str | Path) -> EvaluationReport:
    return EvaluationReport(**json.loads(Path(path).read_text()))


def report_markdown(report: EvaluationReport, title: str) -> str:
    """A readable summary: headline metrics, then per-class precision, recall, F1 and accuracy."""
    lines = [f"# {title}", "", f"{report.num_images} images of the {report.split} split.", ""]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {name.replace('_', ' ')} | {value:.4f} |" for name, value in report.headline_metrics().items()]
    lines += ["", "| class | precision | recall | f1 | accuracy | support |", "| --- | --- | --- | --- | --- | --- |"]
    for label in report.labels:
        row = report.classification_report.get(label, {})
        lines.append(
            f"| {label} | {row.get('precision', 0):.3f} | {row.get('recall', 0):.3f} | {row.get('f1-score', 0):.3f} "
            f"| {report.per_class_accuracy[label]:.3f} | {int(row.get('support', 0))} |"
        )
    return "\n".join(lines) + "\n"
