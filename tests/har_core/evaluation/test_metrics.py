import csv
import json

import numpy as np
import pytest
from sklearn.metrics import f1_score

from har_core.config import EvaluationConfig
from har_core.evaluation.metrics import (
    compute_report,
    evaluate_classifier,
    evaluate_with_predictions,
    report_markdown,
    write_report_files,
)
from har_core.evaluation.plots import confusion_matrix_image
from har_core.runtime.labels import HAR_LABELS
from tests.har_core.data.folders import image_records

LABELS = ["calling", "running", "sleeping"]


def test_report_matches_scikit_learn_and_counts():
    y_true = np.array([0, 0, 0, 1, 1, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0])
    report = compute_report(y_true, y_pred, LABELS, "test")
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert report.confusion_matrix == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    recall = {label: report.classification_report[label]["recall"] for label in LABELS}
    assert recall == pytest.approx({"calling": 2 / 3, "running": 1.0, "sleeping": 0.0})  # = per-class accuracy
    assert "per_class_accuracy" not in report.model_dump()
    assert report.normalized_confusion_matrix()[0].tolist() == pytest.approx([2 / 3, 1 / 3, 0])
    assert report.classification_report["running"]["support"] == 2


def test_report_files_and_summary(tmp_path):
    report = compute_report(np.array([0, 1, 2]), np.array([0, 1, 1]), LABELS, "val")
    paths = write_report_files(report, tmp_path)
    assert json.loads(paths["json"].read_text())["accuracy"] == pytest.approx(2 / 3)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [row["class"] for row in rows[:3]] == LABELS
    assert "| sleeping |" in report_markdown(report, "title")
    image = confusion_matrix_image(report)
    assert image.mode == "RGB" and image.width > image.height > 200


def test_zero_shot_evaluation_of_an_untrained_model(tiny_model, synthetic_root):
    records = image_records(synthetic_root, HAR_LABELS)[:30]
    report = evaluate_classifier(
        tiny_model, records, EvaluationConfig(device="cpu", num_workers=0, batch_size=8), HAR_LABELS
    )
    assert report.num_images == 30
    assert np.asarray(report.confusion_matrix).sum() == 30
    assert 0.0 <= report.accuracy <= 1.0


def test_empty_split_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="empty"):
        evaluate_classifier(tiny_model, [], EvaluationConfig(split="val"), HAR_LABELS)


def test_a_dataset_with_another_label_order_is_refused(tiny_model, synthetic_root):
    records = image_records(synthetic_root, HAR_LABELS)[:4]
    config = EvaluationConfig(device="cpu", num_workers=0)
    with pytest.raises(ValueError, match="different order"):
        evaluate_classifier(tiny_model, records, config, list(reversed(HAR_LABELS)))
    with pytest.raises(ValueError, match="only in the dataset \\['juggling'\\]"):
        evaluate_classifier(tiny_model, records, config, [*HAR_LABELS[:-1], "juggling"])


def test_per_image_predictions_agree_with_the_report(tiny_model, synthetic_root):
    records = image_records(synthetic_root, HAR_LABELS)[::3]
    config = EvaluationConfig(device="cpu", num_workers=0, batch_size=16)
    report, predictions = evaluate_with_predictions(tiny_model, records, config, HAR_LABELS)
    without_ood = {"calibration": {"ood_auroc"}}  # the generated out-of-distribution sets are the step's alone
    alone = evaluate_classifier(tiny_model, records, config, HAR_LABELS)
    assert report.model_dump(exclude=without_ood) == alone.model_dump(exclude=without_ood)
    assert alone.calibration.ood_auroc == {}
    assert sorted(report.calibration.ood_auroc) == [
        f"{kind}/{score}" for kind in ("noise", "unseen_shapes") for score in ("max_cosine", "max_probability")
    ]
    assert [image.path for image in predictions.images] == [record.path for record in records]
    assert [image.true_label for image in predictions.images] == [HAR_LABELS[record.label] for record in records]
    matrix = np.zeros((len(HAR_LABELS), len(HAR_LABELS)), dtype=int)
    for image in predictions.images:
        matrix[HAR_LABELS.index(image.true_label), HAR_LABELS.index(image.predicted_label)] += 1
        assert 0.0 <= image.true_score <= image.predicted_score <= 1.0
    assert matrix.tolist() == report.confusion_matrix
    mistakes = predictions.mistakes()
    assert len(mistakes) == report.num_images - sum(np.diag(matrix)) > 0  # an untrained model errs
    assert [m.predicted_score for m in mistakes] == sorted((m.predicted_score for m in mistakes), reverse=True)
    pair = mistakes[0].true_label, mistakes[0].predicted_label
    assert len(predictions.mistakes(*pair)) == matrix[HAR_LABELS.index(pair[0]), HAR_LABELS.index(pair[1])]
