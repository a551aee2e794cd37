"""Calibration on the session's tiny training run: a model that is sure of itself after two epochs."""

import numpy as np
import pytest

from har_zenml.names import (
    CALIBRATE_STEP,
    CALIBRATION_ARTIFACT,
    EVALUATION_REPORT_ARTIFACT,
    EXPORT_STEP,
    EXPORTS_ARTIFACT,
    FINE_TUNED_EVALUATION_STEP,
)

pytestmark = pytest.mark.slow


def test_temperature_scaling_lowers_the_tiny_models_calibration_error(tiny_training_run):
    """The quickstart model is already calibrated (ECE ~0.03: docs/confidence.md), so the tiny run, two epochs at
    a high logit scale, is the one with something to fix: its temperature > 1 must not raise ECE or NLL on test."""
    run, _ = tiny_training_run
    calibration = run.steps[CALIBRATE_STEP].outputs[CALIBRATION_ARTIFACT][0].load()
    figures = run.steps[FINE_TUNED_EVALUATION_STEP].outputs[EVALUATION_REPORT_ARTIFACT][0].load().calibration.metrics
    print(calibration, figures)
    assert calibration.temperature > 1
    assert figures["ece_after"] <= figures["ece_before"]
    assert figures["nll_after"] <= figures["nll_before"]


def test_the_export_carries_the_statistics_its_out_of_distribution_score_reads(tiny_training_run):
    from har_core.runtime.manifest import OOD_STATISTICS_ROLE
    from har_core.runtime.predictor import Predictor

    run, _ = tiny_training_run
    bundle = run.steps[EXPORT_STEP].outputs[EXPORTS_ARTIFACT][0].load()
    predictor = Predictor.from_export(bundle.directory("onnx"), device="cpu")
    assert OOD_STATISTICS_ROLE in predictor.manifest.files and predictor.calibration.ood_score == "mahalanobis"
    pixels = np.zeros((2, 3, 32, 32), "float32")
    scores = predictor.ood_scores(*predictor.run(pixels))
    assert scores.shape == (2,) and (scores >= 0).all()


def test_the_monitoring_reference_is_linked_to_the_version_and_matches_what_the_export_serves(tiny_training_run):
    """The calibrate step's reference (val embeddings, predicted labels, calibrated confidences) is an artifact of
    the model version, and the export's Predictor gives the same answers on the same val images."""
    from har_core.runtime.predictor import Predictor
    from har_zenml.names import DATASET_ARTIFACT, MONITORING_REFERENCE_ARTIFACT

    run, version = tiny_training_run
    reference = version.get_artifact(MONITORING_REFERENCE_ARTIFACT).load()
    manifest = run.steps["load_data"].outputs[DATASET_ARTIFACT][0].load()
    val = manifest.split("val")
    assert reference.split == "val" and len(reference.predicted) == len(val)
    predictor = Predictor.from_export(
        run.steps[EXPORT_STEP].outputs[EXPORTS_ARTIFACT][0].load().directory("onnx"), device="cpu"
    )
    from har_core.data.dataset import load_image

    answers = predictor.classify([load_image(record.path) for record in val], top_k=1)
    assert [predictor.labels.index(a.predictions[0].label) for a in answers] == reference.predicted.tolist()
    assert np.allclose([a.verdict.confidence for a in answers], reference.confidence, atol=1e-4)
    assert predictor.reference.summary() == reference.summary()
