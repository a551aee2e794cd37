"""ZenML steps: thin typed adapters over har_core, one module per step (import a step from its module).

Importing this package imports nothing, so `steps.names` and `steps.model_exports` stay cheap for the viewer; each
step module with a custom output type imports `steps.materializers`, which registers their materializers.
"""
