"""Where an ONNX model's time goes, per operator type, from onnxruntime's own profiler: the reason a format stays
short of its arithmetic limit (time in operators that are not GEMMs cannot run at a GEMM's rate)."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

# Operators whose time is a GEMM at the limit's arithmetic (fused attention is reported on its own: it holds the
# packed q/k/v GEMM and the attention scores).
GEMM_OPERATORS = frozenset(
    {"MatMul", "Gemm", "FusedMatMul", "MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QLinearMatMul"}
)


def operator_time_shares(path: Path, pixels: np.ndarray, threads: int, runs: int = 2) -> dict[str, float]:
    """Operator type -> share of kernel time over `runs` profiled runs after one warm-up, largest first."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="har-clip-profile-") as directory:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(directory) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: pixels}
        session.run(None, feed)
        for _ in range(runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: Counter[str] = Counter()
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith("_kernel_time"):
            totals[event["args"]["op_name"]] += event["dur"]
    whole = sum(totals.values()) or 1
    return {name: duration / whole for name, duration in totals.most_common()}


def summary(shares: dict[str, float]) -> str:
    """'GEMM 70%, Attention 12%, SkipLayerNormalization 9%, …' with the GEMM operators added up."""
    gemm = sum(share for name, share in shares.items() if name in GEMM_OPERATORS)
    others = [(name, share) for name, share in shares.items() if name not in GEMM_OPERATORS and share >= 0.01]
    return ", ".join([f"GEMM {gemm:.0%}", *(f"{name} {share:.0%}" for name, share in others)])
