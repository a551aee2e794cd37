"""ZenML pipelines: wiring only, one module per pipeline (`stages.py` holds what two of them share).

Import a pipeline from its module; the command line that runs them is `cli/`.
"""
