"""Every route's model calls go one at a time per worker (bento/model_calls.py), on the tiny model's real export."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bento.model_calls import SerialPredictor
from har_core.runtime.predictor import Predictor


def test_concurrent_calls_from_several_routes_never_overlap(onnx_export_dir, parity_pixels):
    predictor = Predictor.from_export(onnx_export_dir, device="cpu")
    inside, most, guard = 0, 0, threading.Lock()
    real_run = predictor.run

    def counted_run(pixels):  # the real model call, with how many run at once recorded around it
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        try:
            time.sleep(0.005)  # widen the window a second caller would have to overlap in
            return real_run(pixels)
        finally:
            with guard:
                inside -= 1

    predictor.run = counted_run
    serial = SerialPredictor(predictor, threading.Lock())
    pixels = np.ascontiguousarray(parity_pixels[:4])
    calls = [
        lambda: serial.predict_pixels(pixels, 3),  # /predict_batch
        lambda: serial.predict_pixels(pixels, 2, ["a person clapping", "a person sleeping"]),  # /classify
        lambda: serial.probabilities(pixels),  # a video's frames
        lambda: serial.run(pixels),
    ]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda call: call(), calls * 6))
    assert most == 1 and len(results) == 24
    assert serial.labels == predictor.labels and serial.manifest is predictor.manifest  # read through
    unserialised = ThreadPoolExecutor(8)
    most = 0
    list(unserialised.map(lambda _: predictor.probabilities(pixels), range(16)))
    unserialised.shutdown()
    assert most > 1  # the same calls without the lock do overlap: the check above can fail
