"""The parity set every export carries: plain tensors (no pickle), and the gate re-run from it where it loads."""

import shutil

import numpy as np
import pytest
from safetensors import safe_open

from har_core.runtime.manifest import PARITY_SET_ROLE, ExportManifest, ParityResult
from har_core.runtime.parity import compare_outputs, describe_parity, load_parity_set, recheck_parity
from har_core.runtime.predictor import Predictor
from har_core.runtime.settings import ParityThresholds


def test_every_export_carries_a_parity_set_of_plain_float32_tensors(tiny_exports, parity_pixels):
    for name in tiny_exports.deployable_formats():
        directory = tiny_exports.directory(name)
        manifest = ExportManifest.load(directory)
        path = manifest.path(directory, PARITY_SET_ROLE)
        with safe_open(str(path), "numpy") as tensors:  # safetensors: no code runs when it is read
            assert sorted(tensors.keys()) == ["image_embeddings", "logits", "pixels"]
        pixels, (embeddings, logits) = load_parity_set(path)
        count = min(32, len(parity_pixels))
        assert pixels.dtype == np.float32 and pixels.shape == (count, *parity_pixels.shape[1:])
        np.testing.assert_array_equal(pixels, parity_pixels[:count])
        assert embeddings.shape[0] == logits.shape[0] == count and logits.shape[1] == len(manifest.labels)


def test_the_gate_rerun_from_the_parity_set_passes_where_it_passed_at_export(onnx_export_dir):
    predictor = Predictor.from_export(onnx_export_dir, device="cpu")
    result = recheck_parity(predictor)
    assert result is not None and result.passed, result
    assert result.thresholds == predictor.manifest.parity.thresholds and result.top1_agreement == 1.0


def _outputs(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, logits) with unit embeddings, so the cosine criterion passes and the logits decide."""
    return np.ones((len(logits), 4)), logits


def _constructed(count: int = 200, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Reference logits with a clear lead (2.0) on row % classes, except near-ties (lead 0.01) on every 10th row,
    and labels the reference gets right on 90 % of rows."""
    rows = np.arange(count)
    logits = np.zeros((count, classes))
    logits[rows, rows % classes] = 2.0
    logits[rows % 10 == 0, (rows[rows % 10 == 0] + 1) % classes] = 1.99  # the near-ties: top-2 just behind
    labels = rows % classes
    labels[rows % 10 == 5] = (labels[rows % 10 == 5] + 1) % classes  # the reference is wrong on these
    return logits, labels


REDUCED = ParityThresholds(min_top1_agreement=0.99, min_margin=0.5, max_accuracy_drop=0.01, max_abs_logit_diff=None)


def test_near_tied_flips_do_not_count_against_agreement_but_a_clear_flip_does():
    logits, labels = _constructed()
    flipped = logits.copy()
    near_ties = np.flatnonzero(np.arange(len(logits)) % 10 == 0)
    flipped[near_ties, (near_ties + 1) % 3] = 2.01  # 20 near-ties flip to the second class
    agreement_only = REDUCED.model_copy(update={"max_accuracy_drop": None})
    result = compare_outputs(_outputs(logits), _outputs(flipped), agreement_only)
    assert result.top1_agreement_all == 0.9 and result.top1_agreement == 1.0 and result.clear_images == 180
    assert result.passed, result.failures
    clear_flip = flipped.copy()
    clear_flip[[1, 2]] = np.roll(clear_flip[[1, 2]], 1, axis=1)  # two images PyTorch is sure of now pick another class
    failed = compare_outputs(_outputs(logits), _outputs(clear_flip), REDUCED, labels)
    assert not failed.passed and failed.top1_agreement == 178 / 180
    assert any("top-1 agreement (margin >= 0.5, 180 images)" in failure for failure in failed.failures)


def test_accuracy_lost_on_the_labels_is_judged_relative_to_the_reference():
    logits, labels = _constructed()
    gate = REDUCED.model_copy(update={"min_top1_agreement": 0.0})
    reference_correct = int((logits.argmax(1) == labels).sum())
    worse = logits.copy()
    right = np.flatnonzero((logits.argmax(1) == labels) & (np.arange(len(labels)) % 10 == 0))[:2]
    worse[right, (right + 1) % 3] = 2.01  # two near-ties the reference got right turn wrong
    result = compare_outputs(_outputs(logits), _outputs(worse), gate, labels)
    assert result.reference_accuracy == reference_correct / 200 and result.accuracy == (reference_correct - 2) / 200
    assert result.accuracy_drop == pytest.approx(2 / reference_correct) and not result.passed  # 0.0111 > 0.01
    assert "relative drop" in result.failures[0] and "> 0.01" in result.failures[0]
    one_lost = compare_outputs(_outputs(logits), _outputs(worse), gate.model_copy(update={"max_accuracy_drop": 0.02}))
    assert not one_lost.passed and "no labels" in one_lost.failures[0]  # asked for, but nothing to judge it on
    better = logits.copy()
    wrong = np.flatnonzero(logits.argmax(1) != labels)[:5]
    better[wrong, labels[wrong]] = 3.0
    gained = compare_outputs(_outputs(logits), _outputs(better), gate, labels)
    assert gained.accuracy_drop == 0.0 and gained.passed and gained.accuracy > gained.reference_accuracy


def test_an_unsure_model_is_judged_on_accuracy_and_cosine_alone():
    """No image has a clear margin: nothing for agreement to judge (and no NaN in the stored result), but accuracy
    lost still fails an export that loses it."""
    ties = np.zeros((8, 3))
    ties[:, 0] = 0.1
    labels = np.zeros(8, dtype=int)
    result = compare_outputs(_outputs(ties), _outputs(ties), REDUCED, labels)
    assert result.clear_images == 0 and result.top1_agreement == 1.0 and result.passed, result.failures
    assert "top-1 agreement 1.0000 on 0 of 8 images" in describe_parity(result)
    assert ParityResult.model_validate_json(result.model_dump_json()) == result  # a manifest stores it
    worse = ties.copy()
    worse[:2, 1] = 0.2  # two of the eight, right before, now pick another class
    lost = compare_outputs(_outputs(ties), _outputs(worse), REDUCED, labels)
    assert not lost.passed and "relative drop 0.2500 > 0.01" in lost.failures[0]
    fp32 = compare_outputs(_outputs(ties), _outputs(ties), ParityThresholds(min_embedding_cosine=0.99))
    assert fp32.passed and fp32.clear_images == 8  # min_margin 0: every image counts


def test_the_description_names_each_figure_beside_its_threshold():
    logits, labels = _constructed()
    text = describe_parity(compare_outputs(_outputs(logits), _outputs(logits), REDUCED, labels))
    assert text.startswith("accuracy 0.9000 against PyTorch's 0.9000, relative drop 0.0000 (<= 0.01)")
    assert "top-1 agreement 1.0000 on 180 of 200 images with a margin >= 0.5 (>= 0.99)" in text
    assert "logit diff" not in text  # int8's gate leaves it unchecked


def test_the_startup_recheck_leaves_accuracy_to_the_export(tiny_exports, tmp_path):
    directory = tmp_path / "onnx"
    shutil.copytree(tiny_exports.directory("onnx"), directory)
    manifest = ExportManifest.load(directory)
    asks_accuracy = manifest.parity.thresholds.model_copy(update={"max_accuracy_drop": 0.01})
    manifest.model_copy(update={"parity": manifest.parity.model_copy(update={"thresholds": asks_accuracy})}).save(
        directory
    )
    result = recheck_parity(Predictor.from_export(directory, device="cpu"))
    assert result.passed and result.accuracy is None and result.thresholds.max_accuracy_drop is None
