"""What each pod of the multi-node train command runs: `python -m steps.multinode_node JOB_URI`.

Downloads the job from the artifact store, joins the other pods through torchrun (node layout from the
variables ZenML's Kubernetes step operator sets), and on the pod holding global rank 0 uploads the result and
the best model (consolidated, `HarClipClassifier.save` layout) to `JOB_URI/output`.
"""

import logging
import os
import sys
import tempfile
from pathlib import Path

from zenml.utils import io_utils

from har_core.job import TrainingJob
from har_core.launch import NODE_INDEX_VARIABLE, launch_node
from har_core.training import TrainingResult
from steps.multinode import MODEL_DIR, OUTPUT_DIR, RESULT_NAME


def run_node(job_uri: str) -> None:
    with tempfile.TemporaryDirectory() as job_dir:
        io_utils.copy_dir(job_uri, job_dir, overwrite=True)
        job = TrainingJob.load(job_dir)
        # Paths in job.json are those of the publishing machine; point them at this pod's copy.
        local = TrainingJob.in_directory(Path(job_dir), job.config, Path(job_dir) / "checkpoints")
        local.save(Path(job_dir))
        launch_node(Path(job_dir))
        if os.environ.get(NODE_INDEX_VARIABLE, "0") == "0":
            result = TrainingResult.model_validate_json(Path(local.result_file).read_text())
            io_utils.copy_dir(result.best_checkpoint, f"{job_uri}/{OUTPUT_DIR}/{MODEL_DIR}", overwrite=True)
            io_utils.copy(local.result_file, f"{job_uri}/{OUTPUT_DIR}/{RESULT_NAME}", overwrite=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m steps.multinode_node JOB_URI")
    run_node(sys.argv[1])
