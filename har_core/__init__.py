"""har-clip's domain library, grouped by pipeline stage: data, model, training, evaluation, export, runtime.

It imports neither ZenML nor BentoML, so notebooks, the Bento service and tests can use it on its own. Old module
paths (before the grouping), which artifacts in existing ZenML stores record, are the ZenML side's business
(`har_zenml.legacy_paths`, installed by `import har_zenml`).
"""
