"""The project's ZenML-side library: what steps, pipelines, the CLI, the viewer and the benchmarks share.

Step, artifact and model names (`names`), materializers, experiment-tracker logging (`tracking`), the provenance a
run records on its model version (`model_provenance`), finding a model version's exports (`model_exports`), the
deployment and batch-inference plans and inputs, config paths anchored at ZenML's source root (`project_paths`) and
the multi-node pod entry point (`multinode_node`). Steps live in `steps/`, one module per step.

Importing it installs the old import paths that stored artifacts record (`legacy_paths`); nothing heavier.
"""

from har_zenml import legacy_paths

legacy_paths.install()
