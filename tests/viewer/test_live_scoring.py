"""The live camera's scorer on the tiny model's real ONNX export: one frame at a time, the rest dropped, smoothed."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest
from PIL import Image

from har_core.runtime.confidence import NO_ACTION
from har_core.runtime.predictor import Predictor
from har_core.runtime.preprocess import preprocess
from har_core.runtime.timeline import current_action
from tests.viewer.unsure_images import judged_image
from viewer.backends import LocalBackend
from viewer.charts import SMOOTHED_TOP1, live_chart
from viewer.live_scoring import LiveScorer, LiveSettings
from viewer.webcam import live_verdict_text


@pytest.fixture(scope="module")
def backend(onnx_export_dir) -> LocalBackend:
    return LocalBackend(Predictor.from_export(onnx_export_dir, device="cpu"), {"name": "tiny", "version": "1"})


def camera_frame(synthetic_root, label: str = "calling") -> av.VideoFrame:
    with Image.open(sorted((synthetic_root / label).glob("*.jpg"))[0]) as image:
        return av.VideoFrame.from_ndarray(np.asarray(image.convert("RGB").resize((64, 64))), format="rgb24")


def wait_until_scored(scorer: LiveScorer, count: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while scorer.snapshot().scored < count:
        assert time.monotonic() < deadline, scorer.snapshot()
        time.sleep(0.01)


def test_frames_arriving_while_one_is_scored_or_before_it_is_due_are_dropped(backend, synthetic_root):
    scorer = LiveScorer(backend, LiveSettings(scoring_fps=2.0))
    frame = camera_frame(synthetic_root)
    taken = [scorer.offer(frame) for _ in range(20)]  # a burst: only the first is taken
    assert taken == [True] + [False] * 19
    wait_until_scored(scorer, 1)
    assert not scorer.offer(frame)  # scored already, but the next is due only 0.5 s after the first
    time.sleep(0.55)
    assert scorer.offer(frame)
    wait_until_scored(scorer, 2)
    state = scorer.snapshot()
    assert (state.received, state.scored, state.dropped) == (22, 2, 20)
    assert state.latency_ms is not None and state.latency_ms > 0 and state.scoring_fps > 0 and state.camera_fps > 0
    assert state.frame is not None and max(state.frame.size) <= 320
    scorer.close()


def test_the_readout_is_the_smoothed_probability_of_the_backends_answers(backend, synthetic_root):
    frame = camera_frame(synthetic_root)
    direct = backend.predictor.probabilities(
        np.stack([preprocess(frame.to_image(), backend.predictor.manifest.preprocess)])
    )[1]
    scorer = LiveScorer(backend, LiveSettings(scoring_fps=30.0, smoothing="window", window=3))
    for count in (1, 2):
        scorer.offer(frame)
        wait_until_scored(scorer, count)
        time.sleep(0.04)
    state = scorer.snapshot()
    np.testing.assert_allclose(state.history[-1].probabilities, direct[0], atol=1e-6)  # same frame: mean = itself
    assert state.best_label == backend.labels[int(direct[0].argmax())]
    assert state.label == current_action(direct[0], backend.labels, state.threshold)[0]  # "no action" below it
    assert state.probability == pytest.approx(float(direct[0].max()), abs=1e-6)
    scorer.configure(LiveSettings(scoring_fps=30.0, smoothing="ema", alpha=0.5))  # new settings: a new history
    assert scorer.snapshot().history == [] and scorer.snapshot().received == 0
    scorer.close()


def test_the_readout_is_no_action_while_the_smoothed_top1_is_below_the_exports_threshold(backend, synthetic_root):
    """A frame the export's calibration abstains on reads "no action" (its best guess kept), then frames it answers
    bring the action back once their smoothed top-1 reaches the threshold."""
    predictor = backend.predictor
    extra = sorted(synthetic_root.glob("*/*.jpg"))
    unsure, sure = (judged_image(predictor, abstained, extra) for abstained in (True, False))
    scorer = LiveScorer(backend, LiveSettings(scoring_fps=30.0, smoothing="window", window=1))
    for count, image in enumerate([unsure, sure], start=1):
        scorer.offer(av.VideoFrame.from_ndarray(np.asarray(image), format="rgb24"))
        wait_until_scored(scorer, count)
        state = scorer.snapshot()
        expected = predictor.classify([image], top_k=1)[0]
        assert state.threshold == predictor.calibration.abstain_below and state.calibrated
        assert state.best_label == expected.predictions[0].label
        assert state.probability == pytest.approx(expected.verdict.confidence, abs=1e-6)
        assert state.abstained is (image is unsure)
        assert state.label == (NO_ACTION if image is unsure else expected.predictions[0].label)
        threshold = f"{predictor.calibration.abstain_below:.1%}"
        assert live_verdict_text(state) == (
            f"No action named: the smoothed best guess, **{state.best_label}** at {state.probability:.1%}, is below "
            f"the {threshold} this model needs to name an action."
            if image is unsure
            else f"Smoothed calibrated probability; below {threshold} the model answers “{NO_ACTION}”."
        )
        time.sleep(0.04)
    spec = live_chart(state).to_dict()  # the two labels leading, the smoothed top-1 and the threshold
    lines, rule = spec["layer"]
    [rows] = spec["datasets"].values()
    top1 = [row["probability"] for row in rows if row["label"] == SMOOTHED_TOP1]
    assert top1 == [point.confidence for point in state.history] and rule["encoding"]["y"]["field"] == "threshold"
    scorer.close()


def test_aioice_offers_loopback_once_asked():
    import aioice.ice

    from viewer.webcam import RTC_CONFIGURATION, offer_loopback_candidates

    offer_loopback_candidates()
    offer_loopback_candidates()
    addresses = aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
    assert addresses.count("127.0.0.1") == 1
    assert RTC_CONFIGURATION == {"iceServers": []}  # no STUN or TURN server is ever asked


class FailingOnce(LocalBackend):
    """The real local backend, whose first call fails with an error no one planned for (a KeyError deep inside)."""

    def __init__(self, backend: LocalBackend) -> None:
        super().__init__(backend.predictor, {"name": "tiny", "version": "1"})
        self.calls = 0

    def predict(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 1:
            raise KeyError("pixel_values")
        return super().predict(*args, **kwargs)


def test_any_backend_error_is_shown_and_the_next_frame_is_scored(backend, synthetic_root):
    """Only four error types used to reset the scorer: anything else left it busy for good, silently."""
    failing = FailingOnce(backend)
    scorer = LiveScorer(failing, LiveSettings(scoring_fps=30.0))
    frame = camera_frame(synthetic_root)
    assert scorer.offer(frame)
    deadline = time.monotonic() + 30
    while scorer.snapshot().error is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert scorer.snapshot().error == "KeyError: 'pixel_values'"
    time.sleep(0.05)
    assert scorer.offer(frame)  # not stuck busy
    wait_until_scored(scorer, 1)
    assert scorer.snapshot().error is None
    scorer.close()
