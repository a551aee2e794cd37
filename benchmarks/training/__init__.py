"""Training-stage benchmarks: the data path, the loop, DDP/FSDP, the data scan, the pipeline on each stack."""
