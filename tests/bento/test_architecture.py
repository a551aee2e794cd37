"""Rules of the serving design, checked in fresh processes.

The service (and everything it imports) needs neither ZenML, MLflow, W&B, DVC nor any of har_core but its runtime
package, and an ONNX model is served without torch: the check blocks those imports, loads the service, predicts.
"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import PROJECT_ROOT

BLOCKED = (
    *("torch", "torchvision", "transformers", "zenml", "mlflow", "wandb", "dvc"),
    *("steps", "pipelines", "har_zenml", "cli", "bento_ops"),  # the layers above, and the tooling that never ships
)
# The Bento ships har_core.runtime only (bento_ops/packaging.py: LIBRARY_FILES); the rest of har_core is not needed.
TRAINING_SIDE = tuple(
    f"har_core.{part}" for part in ("config", "data", "model", "training", "evaluation", "export", "preflight")
)

BLOCK_IMPORTS = f"""
import importlib.abc, sys
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {BLOCKED!r} or name.startswith({TRAINING_SIDE!r}):
            raise ImportError(f"{{name}} is blocked in this test")
        return None
sys.meta_path.insert(0, Blocker())
"""


def _run(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK_IMPORTS + script],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_service_serves_an_onnx_model_without_torch_or_the_training_stack(bento_model):
    script = (
        "import numpy as np\n"
        "from PIL import Image\n"
        "from bento.service import HarClipService\n"
        "service = HarClipService.inner()\n"
        "image = Image.new('RGB', (50, 40), (10, 200, 30))\n"
        "from har_core.runtime.preprocess import centre_crop\n"
        "crop = centre_crop(image, service.predictor.manifest.preprocess)\n"
        "[[embedding, logits]] = service.raw_outputs([__import__('base64').b64encode(crop.tobytes()).decode()])\n"
        "assert (len(logits), len(embedding)) == (15, service.predictor.manifest.embedding_dim), logits\n"
        "answer = service.predictor.classify([image])[0]\n"
        "assert answer.verdict.ood_score is not None and answer.verdict.confidence == answer.predictions[0].score\n"
        "ranked = service.predictor.predict([image], labels=['juggling', 'rowing'])[0]\n"
        "assert ranked[0].label in ('juggling', 'rowing')\n"
        "leaked = sorted({m.split('.')[0] for m in sys.modules} & set(" + repr(BLOCKED) + "))\n"
        "leaked += sorted(m for m in sys.modules if m.startswith(" + repr(TRAINING_SIDE) + "))\n"
        "assert not leaked, leaked\n"
    )
    result = _run(script, env={"HAR_CLIP_BENTO_MODEL": str(bento_model.tag)})
    assert result.returncode == 0, result.stderr[-3000:]


def test_the_block_is_real():
    result = _run("import torch\n")
    assert result.returncode != 0 and "blocked in this test" in result.stderr
