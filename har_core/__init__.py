"""har-clip's domain library: CLIP action classifier, data, training, evaluation.

It imports neither ZenML nor BentoML, so notebooks, the Bento service and tests can use it on its own.
"""
