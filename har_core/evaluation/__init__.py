"""Metrics, plots and the promotion rule.

Artifacts saved when this was one module still load: `har_zenml.legacy_paths` hands its old names on.
"""
