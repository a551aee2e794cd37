"""The training loop and everything that runs it: torchrun workers, DDP/FSDP, checkpoints, precision.

Artifacts saved when this was one module still load: `har_zenml.legacy_paths` hands its old names on.
"""
