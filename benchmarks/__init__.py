"""Benchmarks by stage (`training`, `export`, `serving`, and `shared`), each run as `python -m benchmarks.STAGE.NAME`
from the project root; each prints a table of ratios from one run. `gpu_check.sh` runs the lent-GPU check.
"""
