"""har-clip's domain library, grouped by pipeline stage: data, model, training, evaluation, export, runtime.

It imports neither ZenML nor BentoML, so notebooks, the Bento service and tests can use it on its own. Old module
paths (before the grouping) still import, for artifacts in existing ZenML stores (`har_core.legacy`).
"""

from har_core import legacy

legacy.install()
