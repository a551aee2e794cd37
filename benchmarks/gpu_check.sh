#!/usr/bin/env bash
# GPU check for distributed training (#5): run on a machine with one CUDA GPU, from the repository root.
#
#   bash benchmarks/gpu_check.sh            # writes $OUT/gpu_check.md (OUT defaults to ./gpu-check)
#
# Trainer, DDP and FSDP at world size 1 with NCCL and bf16 at ViT-B/16 size, and torch.compile: step time,
# img/s, peak CUDA memory, estimated MFU. The device image has CUDA torch and transformers but maybe not our
# other dependencies: wheels placed in benchmarks/wheels/ (pydantic, scikit-learn, click, ...) are installed
# from there without network. Nothing is downloaded: the ViT-B/16-sized CLIP is built from a config.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-check}"
PYTHON="${PYTHON:-python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" TOKENIZERS_PARALLELISM=false
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/nvidia-smi.csv"
missing=$("$PYTHON" - <<'PY'
import importlib.util
wanted = {"pydantic": "pydantic", "sklearn": "scikit-learn", "click": "click", "safetensors": "safetensors",
          "tqdm": "tqdm", "PIL": "pillow", "yaml": "pyyaml", "numpy": "numpy"}
print(" ".join(pkg for module, pkg in wanted.items() if importlib.util.find_spec(module) is None))
PY
)
if [ -n "$missing" ]; then
  echo "missing on this machine: $missing" | tee "$OUT/missing.txt"
  "$PYTHON" -m pip install --no-index --find-links benchmarks/wheels $missing
fi
"$PYTHON" -m pytest -q tests/har_core/test_training_gpu.py 2>&1 | tail -3 | tee "$OUT/gpu_tests.txt" || true
timeout 480 "$PYTHON" -m benchmarks.gpu_check --out "$OUT" --steps "${STEPS:-20}" --batch-size "${BATCH:-64}"
