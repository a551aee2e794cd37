"""The int8 export computes the same on an AVX2-only x86 CPU as on the host that exported it.

onnxruntime picks its int8 GEMM kernel from the CPU it runs on; with int8 weights, CPUs without VNNI saturate
int16 pair sums, so a gate passed on an AVX-512 VNNI host failed on an AVX2-only AMD EPYC. The emulated CPU
(`qemu-x86_64 -cpu EPYC-Rome`: AVX2, no AVX-512, no VNNI) makes that host reproducible on any x86 machine.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from har_core.export.graphs import INT8_WEIGHTS, quantize_onnx_int8
from tests.conftest import PROJECT_ROOT
from tests.required import skip_without

AVX2_ONLY_CPU = "EPYC-Rome"

# Logits of the export through the Predictor (what serving runs), then of each extra ONNX file.
_SCRIPT = """
import json, sys
import numpy as np
import onnxruntime as ort
from numpy._core._multiarray_umath import __cpu_features__ as features
from har_core.runtime.predictor import Predictor

export_dir, pixels_path, out = sys.argv[1:4]
pixels = np.load(pixels_path)
np.save(f"{out}/export.npy", Predictor.from_export(export_dir, device="cpu", threads=1).run(pixels)[1])
for path in sys.argv[4:]:
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    np.save(f"{out}/{path.rsplit('/', 1)[-1]}.npy", session.run(None, {session.get_inputs()[0].name: pixels})[1])
print(json.dumps({name: bool(features.get(name)) for name in ("AVX2", "AVX512F", "AVX512VNNI", "AVXVNNI")}))
"""


def _logits(prefix: list[str], export_dir: Path, pixels: Path, models: list[Path], out: Path) -> dict[str, bool]:
    out.mkdir()
    result = subprocess.run(
        [*prefix, sys.executable, "-c", _SCRIPT, str(export_dir), str(pixels), str(out), *map(str, models)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86 int8 kernels: this check emulates an x86 CPU")
def test_int8_logits_are_the_same_on_an_avx2_only_cpu(tiny_exports, parity_pixels, tmp_path):
    if shutil.which("qemu-x86_64") is None:
        skip_without("qemu-user", "qemu-x86_64 (Debian package qemu-user) emulates the AVX2-only CPU; .ci/run has it")
    pixels = tmp_path / "pixels.npy"
    np.save(pixels, parity_pixels[:16])
    fp32 = tiny_exports.directory("onnx") / "model.onnx"
    settings = {name: quantize_onnx_int8(fp32, tmp_path / f"{name}.onnx", *args) for name, args in INT8_WEIGHTS.items()}
    settings["int8 (onnxruntime's default, U8S8)"] = quantize_onnx_int8(fp32, tmp_path / "u8s8.onnx", "QInt8")
    models = list(settings.values())
    export_dir = tiny_exports.directory("onnx-int8")
    assert tiny_exports.manifest("onnx-int8").graph.fused_nodes["MultiHeadAttention"]  # the fused graph is checked
    host = _logits([], export_dir, pixels, models, tmp_path / "host")
    emulated = _logits(["qemu-x86_64", "-cpu", AVX2_ONLY_CPU], export_dir, pixels, models, tmp_path / "avx2")
    assert emulated["AVX2"] and not emulated["AVX512F"], f"the emulated CPU is not AVX2-only: {emulated}"

    def difference(file_name: str) -> float:
        return float(np.abs(np.load(tmp_path / "host" / file_name) - np.load(tmp_path / "avx2" / file_name)).max())

    # Integer GEMMs are exact on both CPUs; only fp32 ops (LayerNorm, softmax) may round differently (~1e-6).
    assert difference("export.npy") < 1e-4, "the exported int8 model computes differently on AVX2"
    for name, path in settings.items():
        if name in INT8_WEIGHTS:
            assert difference(f"{path.name}.npy") < 1e-4, f"int8_weights={name} computes differently on AVX2"
    if host["AVX512VNNI"] or host["AVXVNNI"]:
        # The check can fail: U8S8 saturates on the emulated CPU and not on this VNNI host, so the emulation really
        # runs the AVX2 kernels. A host without VNNI saturates too (no difference to see): there the old setting
        # fails the export's own parity gate, which the export tests run natively.
        assert difference("u8s8.onnx.npy") > 1e-3
