"""The viewer's calibration charts on real data: the reliability diagram of the tiny model's own logits, and a video
timeline whose "no action" stretch the calibrated export found."""

from __future__ import annotations

import pytest

from har_core.runtime.confidence import NO_ACTION
from har_core.runtime.predictor import Predictor
from tests.viewer.unsure_images import judged_image, no_action_video
from viewer.backends import LocalBackend
from viewer.charts import NO_ACTION_COLOUR, reliability_chart, timeline_chart
from viewer.tables import calibration_frame


@pytest.fixture(scope="module")
def backend(onnx_export_dir) -> LocalBackend:
    return LocalBackend(Predictor.from_export(onnx_export_dir, device="cpu"), {"name": "tiny", "version": "1"})


def dataset_rows(spec: dict, column: str) -> list[dict]:
    """The rows of the one dataset of a chart's spec that has `column`."""
    [rows] = [rows for rows in spec["datasets"].values() if rows and column in rows[0]]
    return rows


@pytest.fixture(scope="module")
def calibration_summary(tiny_model, synthetic_root, tiny_calibration):
    """What the evaluation step records, from the tiny model's logits on every synthetic image and on noise."""
    from har_core.config import EvaluationConfig
    from har_core.evaluation.metrics import image_outputs, record_outputs, summarize_calibration
    from har_core.evaluation.ood_sets import NOISE, noise_images
    from tests.har_core.data.folders import image_records

    config = EvaluationConfig(device="cpu", num_workers=0)
    labels, embeddings, logits = record_outputs(tiny_model, image_records(synthetic_root, tiny_model.labels), config)
    noise = image_outputs(tiny_model, noise_images(16, 48, seed=0), config)
    scale = float(tiny_model.logit_scale().detach())
    calibration, statistics = tiny_calibration
    summary = summarize_calibration((embeddings, logits), labels, calibration, {NOISE: noise}, scale, statistics)
    return summary, len(labels)


def test_the_reliability_diagram_draws_every_filled_bin_before_and_after_over_the_diagonal(calibration_summary):
    summary, images = calibration_summary
    spec = reliability_chart(summary).to_dict()
    assert spec["title"] == "Reliability diagram"
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "circle", "line"]
    drawn = dataset_rows(spec, "when")
    for when, bins in (
        ("before calibration", summary.reliability_before),
        ("after calibration", summary.reliability_after),
    ):
        rows = [row for row in drawn if row["when"] == when]
        filled = [row for row in bins if row.count]
        assert [(r["confidence"], r["accuracy"], r["images"]) for r in rows] == [
            (b.confidence, b.accuracy, b.count) for b in filled
        ]
        assert sum(row["images"] for row in rows) == images
    diagonal = [rows for rows in spec["datasets"].values() if len(rows) == 2 and "when" not in rows[0]]
    assert diagonal == [[{"confidence": 0.0, "accuracy": 0.0}, {"confidence": 1.0, "accuracy": 1.0}]]
    figures = dict(zip(*calibration_frame(summary).to_dict("list").values(), strict=True))
    assert figures["ECE before calibration"] == summary.metrics["ece_before"]
    assert figures["ECE after calibration"] == summary.metrics["ece_after"]
    assert figures["coverage (share answered)"] == summary.metrics["coverage"]
    assert figures["accuracy of the answered"] == summary.metrics["selective_accuracy"]
    assert figures["temperature"] == 1.0  # the fixture's: a random-init model has nothing to calibrate
    assert figures["OOD AUROC, noise/max_cosine"] == summary.ood_auroc["noise/max_cosine"]


def test_no_action_is_grey_on_a_videos_timeline(backend, synthetic_root):
    sure = judged_image(backend.predictor, abstained=False, extra=sorted(synthetic_root.glob("*/*.jpg")))
    _, answer = no_action_video(backend, sure, sorted(synthetic_root.glob("*/*.jpg")))
    assert answer.segments[-1].label == NO_ACTION and answer.abstain_below == backend.calibration.abstain_below
    spec = timeline_chart(answer).to_dict()
    segments, frames = spec["vconcat"]
    scale = segments["encoding"]["color"]["scale"]
    colours = dict(zip(scale["domain"], scale["range"], strict=True))
    assert colours[NO_ACTION] == NO_ACTION_COLOUR
    assert list(colours.values()).count(NO_ACTION_COLOUR) == 1  # no action's grey is no label's colour
    assert set(colours) == {segment.label for segment in answer.segments} | {
        NO_ACTION if frame.abstained else frame.predictions[0].label for frame in answer.frames
    }
    points, rule = frames["layer"]
    assert points["encoding"]["color"]["scale"] == scale  # the frames' colours are the segments'
    assert rule["mark"]["type"] == "rule" and rule["encoding"]["y"]["field"] == "threshold"
    rows = dataset_rows(spec, "best guess")
    assert [row["label"] == NO_ACTION for row in rows] == [frame.abstained for frame in answer.frames]
    assert {row["threshold"] for row in rows} == {answer.abstain_below}
