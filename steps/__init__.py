"""ZenML steps: thin typed adapters over har_core, one module per step (import a step from its module).

Importing this package imports nothing, so `steps.names` and `steps.model_exports` stay cheap for the viewer; each
step names the materializer of its custom outputs itself (`output_materializers`).
"""
