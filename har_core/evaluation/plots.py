"""Confusion-matrix, per-class and reliability images for reports, dashboards and experiment trackers."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: plots are written to images, never shown
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from har_core.evaluation.metrics import EvaluationReport  # noqa: E402


def confusion_matrix_image(report: EvaluationReport, title: str = "") -> Image.Image:
    """Counts (left) and row-normalised rates (right), side by side, as one PIL image."""
    counts = np.asarray(report.confusion_matrix)
    rates = report.normalized_confusion_matrix()
    names = [label.replace("_", " ") for label in report.labels]
    size = max(6.0, 0.45 * len(names) + 2)
    figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1, size), constrained_layout=True)
    for axis, matrix, heading, fmt in ((axes[0], counts, "counts", "d"), (axes[1], rates, "row-normalised", ".2f")):
        shown = axis.imshow(matrix, cmap="Blues", vmin=0, vmax=matrix.max() or 1)
        axis.set_title(heading)
        axis.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        axis.set_yticks(range(len(names)), names, fontsize=8)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        for row in range(len(names)):
            for column in range(len(names)):
                value = matrix[row, column]
                if value:
                    colour = "white" if value > 0.6 * (matrix.max() or 1) else "black"
                    axis.text(column, row, format(value, fmt), ha="center", va="center", fontsize=6, color=colour)
        figure.colorbar(shown, ax=axis, shrink=0.7)
    figure.suptitle(title or f"{report.split} split: accuracy {report.accuracy:.3f} on {report.num_images} images")
    return _as_image(figure)


def per_class_image(report: EvaluationReport, title: str = "") -> Image.Image:
    """Precision, recall and F1 per class as grouped horizontal bars, one PIL image."""
    names = [label.replace("_", " ") for label in report.labels]
    rows = [report.classification_report.get(label, {}) for label in report.labels]
    positions = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(8, max(3.0, 0.45 * len(names) + 1)), constrained_layout=True)
    for offset, key in zip((-0.27, 0.0, 0.27), ("precision", "recall", "f1-score"), strict=True):
        axis.barh(positions + offset, [row.get(key, 0.0) for row in rows], height=0.25, label=key)
    axis.set_yticks(positions, names, fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(0, 1)
    axis.legend(loc="lower right", fontsize=8)
    axis.set_title(title or f"{report.split} split: per-class precision, recall and F1")
    return _as_image(figure)


def reliability_diagram_image(report: EvaluationReport, title: str = "") -> Image.Image:
    """Accuracy against confidence per bin, before and (when fitted) after the temperature, over the diagonal a
    perfectly calibrated model follows; bars are as wide as their bin and say how many images it holds."""
    summary = report.calibration
    figure, axis = plt.subplots(figsize=(6, 6), constrained_layout=True)
    axis.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    if summary is None:
        axis.text(0.5, 0.5, "no calibration figures in this report", ha="center", va="center")
    else:
        series = [("before", summary.reliability_before, "tab:red")]
        if summary.reliability_after is not None:
            series.append(("after", summary.reliability_after, "tab:blue"))
        for name, rows, colour in series:
            filled = [row for row in rows if row.count]
            ece = summary.metrics.get(f"ece_{name}")
            axis.plot(
                [row.confidence for row in filled],
                [row.accuracy for row in filled],
                marker="o",
                color=colour,
                label=f"{name} temperature (ECE {ece:.3f})" if ece is not None else name,
            )
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_xlabel("confidence (mean top-1 probability in the bin)")
    axis.set_ylabel("accuracy in the bin")
    axis.legend(loc="upper left", fontsize=8)
    axis.set_title(title or f"{report.split} split: reliability")
    return _as_image(figure)


def _as_image(figure: plt.Figure) -> Image.Image:
    """The figure as an RGB PIL image (PNG at 100 dpi), the figure closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")
