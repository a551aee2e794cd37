"""ZenML steps: thin typed adapters over har_core, one module per step (import a step from its module).

What steps share with the pipelines, the CLI and the viewer is in `har_zenml`. Importing this package installs the old
import paths stored artifacts record (`steps.materializers.…` among them), and nothing heavier.
"""

import har_zenml  # noqa: F401  (installs har_zenml.legacy_paths)
