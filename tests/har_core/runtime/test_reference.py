"""The monitoring reference: what it keeps, how it is sampled, and that it survives its file."""

import numpy as np
import pytest

from har_core.runtime.reference import MonitoringReference, build_reference


def probabilities_for(count: int, classes: int, seed: int = 0) -> np.ndarray:
    logits = np.random.default_rng(seed).normal(0, 3, (count, classes))
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def test_a_reference_keeps_each_images_prediction_and_confidence_and_round_trips(tmp_path):
    probabilities = probabilities_for(50, 3)
    embeddings = np.random.default_rng(1).normal(size=(50, 8)).astype(np.float32)
    reference = build_reference(("a", "b", "c"), "val", embeddings, probabilities)
    assert np.array_equal(reference.predicted, probabilities.argmax(axis=1))
    assert np.allclose(reference.confidence, probabilities.max(axis=1))
    distribution = reference.label_distribution()
    assert list(distribution) == ["a", "b", "c"] and sum(distribution.values()) == pytest.approx(1.0)
    assert distribution["a"] == pytest.approx(np.mean(probabilities.argmax(axis=1) == 0))
    loaded = MonitoringReference.load(reference.save(tmp_path / "reference.safetensors"))
    assert (loaded.labels, loaded.split) == (("a", "b", "c"), "val")
    assert np.array_equal(loaded.embeddings, embeddings) and np.array_equal(loaded.predicted, reference.predicted)
    assert loaded.summary() == reference.summary()


def test_a_large_split_is_sampled_the_same_way_for_one_seed():
    probabilities = probabilities_for(300, 4)
    embeddings = np.arange(300, dtype=np.float32)[:, None].repeat(2, axis=1)
    first = build_reference(tuple("abcd"), "val", embeddings, probabilities, seed=3, limit=100)
    again = build_reference(tuple("abcd"), "val", embeddings, probabilities, seed=3, limit=100)
    assert len(first.predicted) == 100 and np.array_equal(first.embeddings, again.embeddings)
    rows = first.embeddings[:, 0].astype(int)  # which images were kept: their predictions travel with them
    assert np.array_equal(first.predicted, probabilities[rows].argmax(axis=1))


def test_mismatched_arrays_are_refused():
    with pytest.raises(ValueError, match="as many embeddings"):
        MonitoringReference(("a",), "val", np.zeros((2, 4)), np.zeros(3, np.int64), np.zeros(3, np.float32))
