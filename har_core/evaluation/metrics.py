"""Scoring a classifier on a split: predictions, scikit-learn metrics, per-image predictions and report files."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from har_core.config import EvaluationConfig
from har_core.data.dataset import ImageClassificationDataset, ImageRecord
from har_core.evaluation import calibration as fit
from har_core.evaluation.ood_sets import ood_sets
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.confidence import Calibration, OodScoreName, OodStatistics, ood_scores, softmax
from har_core.runtime.device import resolve_device
from har_core.runtime.preprocess import preprocess_batch

OOD_IMAGES = 64  # per generated set, at most the evaluated split's size
OOD_IMAGE_SIZE = 96


class ReliabilityRow(BaseModel):
    """One confidence bin of a reliability diagram (see `har_core.evaluation.calibration.reliability_bins`)."""

    lower: float
    upper: float
    count: int
    confidence: float
    accuracy: float


class CalibrationSummary(BaseModel):
    """What calibration did on the evaluated split: figures before and after the temperature, at the abstention
    threshold, and how well the out-of-distribution score tells these images from strange ones."""

    metrics: dict[str, float]  # ece_before/after, nll_before/after, coverage, selective_accuracy, risk_coverage_auc…
    ood_auroc: dict[str, float] = {}  # "<ood set>/<score>" -> AUROC against this split's images
    reliability_before: list[ReliabilityRow]
    reliability_after: list[ReliabilityRow] | None = None  # None: no calibration was fitted (zero-shot evaluation)


class EvaluationReport(BaseModel):
    """Headline metrics, per-class figures and the confusion matrix (rows: true label, columns: predicted).

    Per-class accuracy (correct / images of the class) is the class's recall, so it lives in
    `classification_report[label]["recall"]` only.
    """

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
    confusion_matrix: list[list[int]]
    classification_report: dict[str, dict[str, float]]
    calibration: CalibrationSummary | None = None  # None in reports written before calibration existed

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


@torch.no_grad()
def collect_outputs(
    model: HarClipClassifier, loader: DataLoader, device: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, normalised image embeddings, logits) of every batch of `loader`, fp32 numpy, model in eval mode."""
    model.eval()
    classes = model.class_embeddings()
    labels, embeddings, logits = [], [], []
    for pixel_values, batch_labels in tqdm(loader, desc="Scoring", unit="batch", leave=False):
        image = model.image_embeddings(pixel_values.to(device))
        embeddings.append(image.float().cpu())
        logits.append((model.logit_scale() * image @ classes.to(image.dtype).T).float().cpu())
        labels.append(batch_labels)
    return torch.cat(labels).numpy(), torch.cat(embeddings).numpy(), torch.cat(logits).numpy()


def record_outputs(
    model: HarClipClassifier, records: Sequence[ImageRecord], config: EvaluationConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True label indices, image embeddings and raw logits for `records`."""
    device = resolve_device(config.device)
    dataset = ImageClassificationDataset(records, model.preprocess_config)
    loader = DataLoader(dataset, batch_size=config.batch_size, num_workers=config.num_workers)
    return collect_outputs(model.to(device), loader, device)


def record_logits(
    model: HarClipClassifier, records: Sequence[ImageRecord], config: EvaluationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """True label indices and raw logits (images, labels) for `records`."""
    labels, _, logits = record_outputs(model, records, config)
    return labels, logits


@torch.no_grad()
def image_outputs(
    model: HarClipClassifier, images: Sequence[Image.Image], config: EvaluationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(image embeddings, raw logits) of in-memory images (generated out-of-distribution sets)."""
    device = resolve_device(config.device)
    model = model.to(device).eval()
    classes = model.class_embeddings()
    embeddings, logits = [], []
    for start in range(0, len(images), config.batch_size):
        pixels = preprocess_batch(images[start : start + config.batch_size], model.preprocess_config)
        image = model.image_embeddings(torch.from_numpy(pixels).to(device))
        embeddings.append(image.float().cpu().numpy())
        logits.append((model.logit_scale() * image @ classes.to(image.dtype).T).float().cpu().numpy())
    return np.concatenate(embeddings), np.concatenate(logits)


def score_records(
    model: HarClipClassifier, records: Sequence[ImageRecord], config: EvaluationConfig, temperature: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """True label indices and softmax probabilities (images, labels) at `temperature` for `records`."""
    y_true, logits = record_logits(model, records, config)
    return y_true, softmax(logits, temperature)


def predict(
    model: HarClipClassifier, records: Sequence[ImageRecord], config: EvaluationConfig
) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted label indices for `records`."""
    y_true, probabilities = score_records(model, records, config)
    return y_true, probabilities.argmax(axis=1)


class ImagePrediction(BaseModel):
    """One evaluated image: its true label, the model's top label, and the probability of each."""

    model_config = ConfigDict(frozen=True)

    path: str
    true_label: str
    predicted_label: str
    predicted_score: float
    true_score: float

    @property
    def correct(self) -> bool:
        return self.true_label == self.predicted_label


class EvaluationPredictions(BaseModel):
    """Every image of an evaluation with its prediction, kept so a model's mistakes can be looked at later."""

    split: str
    labels: list[str]
    images: list[ImagePrediction]

    def mistakes(self, true_label: str | None = None, predicted_label: str | None = None) -> list[ImagePrediction]:
        """Wrong predictions, optionally of one (true, predicted) pair; the most confident mistakes first."""
        wrong = [
            image
            for image in self.images
            if not image.correct
            and true_label in (None, image.true_label)
            and predicted_label in (None, image.predicted_label)
        ]
        return sorted(wrong, key=lambda image: -image.predicted_score)


def image_predictions(
    records: Sequence[ImageRecord], y_true: np.ndarray, probabilities: np.ndarray, labels: Sequence[str], split: str
) -> EvaluationPredictions:
    """Per-image predictions from the probabilities `score_records` returns."""
    y_pred = probabilities.argmax(axis=1)
    images = [
        ImagePrediction(
            path=record.path,
            true_label=labels[truth],
            predicted_label=labels[guess],
            predicted_score=float(row[guess]),
            true_score=float(row[truth]),
        )
        for record, truth, guess, row in zip(records, y_true, y_pred, probabilities, strict=True)
    ]
    return EvaluationPredictions(split=split, labels=list(labels), images=images)


def compute_report(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[str], split: str) -> EvaluationReport:
    """All metrics from label indices; labels absent from the split score 0 rather than raising."""
    indices = list(range(len(labels)))
    # Imported here: scikit-learn costs ~1 s per process, and every training worker imports this module.
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, precision_recall_fscore_support

    macro = precision_recall_fscore_support(y_true, y_pred, labels=indices, average="macro", zero_division=0)
    weighted = precision_recall_fscore_support(y_true, y_pred, labels=indices, average="weighted", zero_division=0)
    matrix = confusion_matrix(y_true, y_pred, labels=indices)
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
        confusion_matrix=matrix.tolist(),
        classification_report={name: {k: float(v) for k, v in values.items()} for name, values in report.items()},
    )


def check_label_order(model_labels: Sequence[str], dataset_labels: Sequence[str]) -> None:
    """Record label indices mean `dataset_labels[i]`; a model whose logit order differs would score silently wrong."""
    if list(model_labels) == list(dataset_labels):
        return
    if sorted(model_labels) == sorted(dataset_labels):
        raise ValueError(
            f"The model's labels are in a different order than the dataset's: model {list(model_labels)}, dataset "
            f"{list(dataset_labels)}. Scores would be attributed to the wrong classes; rebuild the model's class "
            "embeddings with `model.set_labels(dataset.labels, model.templates)` first."
        )
    only_model = sorted(set(model_labels) - set(dataset_labels))
    only_dataset = sorted(set(dataset_labels) - set(model_labels))
    raise ValueError(
        f"The model's labels differ from the dataset's: only in the model {only_model}, "
        f"only in the dataset {only_dataset}."
    )


def evaluate_classifier(
    model: HarClipClassifier, records: Sequence[ImageRecord], config: EvaluationConfig, dataset_labels: Sequence[str]
) -> EvaluationReport:
    """Predict on `records` (labels indexing `dataset_labels`) and score them; zero-shot or fine-tuned alike (no
    out-of-distribution sets: promotion and benchmarks compare accuracy)."""
    return evaluate_with_predictions(model, records, config, dataset_labels, measure_ood=False)[0]


def evaluate_with_predictions(
    model: HarClipClassifier,
    records: Sequence[ImageRecord],
    config: EvaluationConfig,
    dataset_labels: Sequence[str],
    calibration: Calibration | None = None,
    measure_ood: bool = True,
    ood_statistics: OodStatistics | None = None,
) -> tuple[EvaluationReport, EvaluationPredictions]:
    """The report plus every image's prediction, from one pass over `records`.

    The report's `calibration` holds ECE and NLL (before and, with a `calibration`, after its temperature), the
    abstention figures at its threshold, and the out-of-distribution AUROC against generated sets; the per-image
    predictions carry the calibrated probabilities the model serves."""
    check_label_order(model.labels, dataset_labels)
    if not records:
        raise ValueError(f"The {config.split} split is empty; there is nothing to evaluate.")
    y_true, embeddings, logits = record_outputs(model, records, config)
    probabilities = softmax(logits, calibration.temperature if calibration else 1.0)
    report = compute_report(y_true, probabilities.argmax(axis=1), model.labels, config.split)
    generated = ood_sets(min(len(records), OOD_IMAGES), OOD_IMAGE_SIZE, len(model.labels)) if measure_ood else {}
    strange = {name: image_outputs(model, images, config) for name, images in generated.items()}
    summary = summarize_calibration(
        (embeddings, logits), y_true, calibration, strange, float(model.logit_scale().detach()), ood_statistics
    )
    report = report.model_copy(update={"calibration": summary})
    return report, image_predictions(records, y_true, probabilities, model.labels, config.split)


def summarize_calibration(
    outputs: tuple[np.ndarray, np.ndarray],
    labels: np.ndarray,
    calibration: Calibration | None,
    strange: dict[str, tuple[np.ndarray, np.ndarray]],
    logit_scale: float,
    statistics: OodStatistics | None = None,
) -> CalibrationSummary:
    """ECE, NLL and reliability before (and after) the temperature on the evaluated images' (embeddings, logits),
    and each out-of-distribution score's AUROC against every generated set in `strange` (name -> its outputs;
    `mahalanobis` only with the training images' `statistics`)."""
    embeddings, logits = outputs
    if calibration is None:
        raw = softmax(logits)
        metrics = {"ece_before": fit.expected_calibration_error(raw, labels)}
        metrics["nll_before"] = fit.negative_log_likelihood(raw, labels)
        before, after, temperature = fit.reliability_bins(raw, labels), None, 1.0
    else:
        metrics, before, after = fit.calibration_metrics(logits, labels, calibration)
        temperature = calibration.temperature
    names = [name for name in get_args(OodScoreName) if name != "mahalanobis" or statistics is not None]

    def score(name: str, image_outputs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        return ood_scores(image_outputs[1], logit_scale, name, temperature, image_outputs[0], statistics)

    auroc = {
        f"{kind}/{name}": fit.ood_auroc(score(name, outputs), score(name, strange_outputs))
        for kind, strange_outputs in strange.items()
        for name in names
    }
    return CalibrationSummary(
        metrics=metrics,
        ood_auroc=auroc,
        reliability_before=_rows(before),
        reliability_after=_rows(after) if after is not None else None,
    )


def _rows(bins: Sequence[fit.ReliabilityBin]) -> list[ReliabilityRow]:
    return [ReliabilityRow(**asdict(b)) for b in bins]


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
    """One row per class (precision, recall, f1, support), for tracker tables; per-class accuracy is the recall."""
    rows = []
    for label in report.labels:
        row = report.classification_report.get(label, {})
        rows.append(
            {
                "class": label,
                "precision": row.get("precision", 0.0),
                "recall": row.get("recall", 0.0),
                "f1": row.get("f1-score", 0.0),
                "support": int(row.get("support", 0)),
            }
        )
    return rows


def load_report(path: str | Path) -> EvaluationReport:
    return EvaluationReport(**json.loads(Path(path).read_text()))


def report_markdown(report: EvaluationReport, title: str) -> str:
    """A readable summary: headline metrics, per-class precision, recall (= per-class accuracy) and F1, then the
    calibration figures and out-of-distribution AUROCs."""
    lines = [f"# {title}", "", f"{report.num_images} images of the {report.split} split.", ""]
    lines += ["| metric | value |", "| --- | --- |"]
    lines += [f"| {name.replace('_', ' ')} | {value:.4f} |" for name, value in report.headline_metrics().items()]
    lines += ["", "| class | precision | recall | f1 | support |", "| --- | --- | --- | --- | --- |"]
    for label in report.labels:
        row = report.classification_report.get(label, {})
        lines.append(
            f"| {label} | {row.get('precision', 0):.3f} | {row.get('recall', 0):.3f} | {row.get('f1-score', 0):.3f} "
            f"| {int(row.get('support', 0))} |"
        )
    if report.calibration is not None:
        lines += ["", "| calibration | value |", "| --- | --- |"]
        lines += [f"| {name.replace('_', ' ')} | {value:.4f} |" for name, value in report.calibration.metrics.items()]
        lines += [f"| OOD AUROC {name} | {value:.4f} |" for name, value in report.calibration.ood_auroc.items()]
    return "\n".join(lines) + "\n"
