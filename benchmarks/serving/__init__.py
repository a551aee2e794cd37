"""Serving-stage benchmarks: served against in-process inference, faults, memory, the live camera, batch inference."""
