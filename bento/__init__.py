"""The har-clip BentoML service: everything in this folder ships in the Bento (no ZenML imports, no torch for ONNX).

What builds, runs and checks a Bento without shipping in it is in `bento_ops/`.
"""
