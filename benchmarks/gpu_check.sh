#!/usr/bin/env bash
# GPU check for distributed and mixed-precision training: run on a machine with one CUDA GPU, from anywhere.
#
#   bash benchmarks/gpu_check.sh            # writes into $OUT (default ./gpu-check); about 8 minutes at most
#
# 1. pytest: the `gpu` tests of training (CUDA AMP bf16/fp16 in one process; DDP with bf16 autocast and FSDP2 with a
#    bf16 MixedPrecisionPolicy, one torchrun worker on NCCL) and the TensorRT checks (the engine's API names against
#    the installed TensorRT, and the engine round trip, both where the pinned TensorRT is installed).
# 2. benchmarks.gpu_check: Trainer, DDP x1 (bf16 autocast), FSDP x1 (bf16 policy, and fp32) and torch.compile at
#    ViT-B/16 size: step time, img/s, peak CUDA memory, estimated MFU.
# The device image has CUDA torch and transformers but maybe not our other dependencies: wheels placed in
# benchmarks/wheels/ (pydantic, scikit-learn, click, pytest, ...; the pinned tensorrt-cu12 wheels to check the
# engine) are installed from there without network. Nothing is downloaded: the ViT-B/16-sized CLIP is built from a
# config. Every output also lands in $OUT (gpu_tests.txt, gpu_check.log, gpu_check.md).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check}"
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false ZENML_ANALYTICS_OPT_IN=false
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
missing=$("$PYTHON" - <<'PY'
import importlib.util
wanted = {"pydantic": "pydantic", "sklearn": "scikit-learn", "click": "click", "safetensors": "safetensors",
          "tqdm": "tqdm", "PIL": "pillow", "yaml": "pyyaml", "numpy": "numpy", "pytest": "pytest",
          "packaging": "packaging"}
print(" ".join(pkg for module, pkg in wanted.items() if importlib.util.find_spec(module) is None))
PY
)
if [ -n "$missing" ]; then
  echo "missing on this machine: $missing" | tee "$OUT/missing.txt"
  if [ ! -d benchmarks/wheels ]; then
    echo "benchmarks/wheels/ does not exist: put wheels of the missing packages there first" | tee -a "$OUT/missing.txt"
    exit 1
  fi
  "$PYTHON" -m pip install --no-index --find-links benchmarks/wheels $missing
fi
# The pinned TensorRT, only from local wheels (never the 11.x a bare `tensorrt` resolves to).
if [ -d benchmarks/wheels ] && ls benchmarks/wheels/tensorrt_cu12* >/dev/null 2>&1; then
  "$PYTHON" -m pip install --no-index --find-links benchmarks/wheels "$("$PYTHON" -c \
    'from har_core.runtime.tensorrt_engine import TENSORRT_REQUIREMENT; print(TENSORRT_REQUIREMENT)')" \
    2>&1 | tail -2 | tee "$OUT/tensorrt_install.txt" || true
fi
"$PYTHON" -c 'import tensorrt; print("TensorRT", tensorrt.__version__)' 2>&1 | tail -1 | tee "$OUT/tensorrt.txt" || true

tests=(tests/har_core/training/test_trainer_gpu.py tests/har_core/runtime/test_tensorrt_api.py)
if "$PYTHON" -c 'import tensorrt' 2>/dev/null; then
  tests+=(tests/har_core/export/test_bundle.py::test_tensorrt_engine_round_trip)
fi
timeout "${TEST_TIMEOUT:-240}" "$PYTHON" -m pytest -q -rs -p no:cacheprovider "${tests[@]}" 2>&1 \
  | tee "$OUT/gpu_tests.txt" | tail -15 || true
timeout "${BENCH_TIMEOUT:-300}" "$PYTHON" -m benchmarks.gpu_check --out "$OUT" --steps "${STEPS:-20}" \
  --batch-size "${BATCH:-64}" 2>&1 | tee "$OUT/gpu_check.log" | grep -v "it/s\]" | tail -20
