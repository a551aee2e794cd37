"""From a trained model to checked deployable formats: one exporter per format, the bundle, benchmark, Hub upload.

Artifacts saved when this was one module still load: `har_zenml.legacy_paths` hands its old names on.
"""
