"""The CLIP backbone, the classifier, and the modules it is exported and served as.

Artifacts saved when this was one module still load: `har_zenml.legacy_paths` hands its old names on.
"""
