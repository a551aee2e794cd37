"""What each pod of the multi-node train command runs: `python -m har_zenml.multinode_node JOB_URI`.

A pod shares nothing with the machine that published the job but the artifact store (and the ZenML server):
it reads `JOB_URI/job.json`, loads the base model and the dataset through their artifacts (the images come out of
the dataset's `images.tar` into this pod's own cache), writes a job for its torchrun workers in its own temp dir,
and joins the other pods (node layout from the variables ZenML's Kubernetes step operator sets). The pod holding
global rank 0 uploads `best/`, `last/`, `environment.json` (its machine and libraries, for the provenance) and
`result.json` under `JOB_URI`. A failure is recorded on the command
step, so the step fails with its cause rather than "failed with status failed".
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from zenml.client import Client
from zenml.io import fileio
from zenml.models import StepRunUpdate
from zenml.utils import io_utils
from zenml.utils.exception_utils import collect_exception_information

from har_core.training.job import RESULT_FILE
from har_core.training.launcher import NodeSpec, launch_node, write_job
from har_core.training.trainer import TrainingResult
from har_zenml.model_provenance import ENVIRONMENT_FILE, training_environment
from har_zenml.multinode_job import CHECKPOINTS_DIR, PublishedJob
from har_zenml.names import TRAIN_COMMAND_STEP

logger = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Set by ZenML's Kubernetes step operator on each pod of a multi-pod command step (zenml.integrations.kubernetes
# .constants); the indexed Job numbers its pods through JOB_COMPLETION_INDEX, which becomes torchrun's node rank.
POD_COUNT_VARIABLE = "ZENML_KUBERNETES_POD_COUNT"
MAIN_ADDRESS_VARIABLE = "ZENML_KUBERNETES_MAIN_ADDRESS"
MAIN_PORT_VARIABLE = "ZENML_KUBERNETES_MAIN_PORT"
NODE_INDEX_VARIABLE = "JOB_COMPLETION_INDEX"
TERMINATION_GRACE_S = 15


def node_from_environment(environ: Mapping[str, str] | None = None) -> NodeSpec | None:
    """This pod's place in the job from the step operator's variables; None on a single pod."""
    environ = os.environ if environ is None else environ
    if int(environ.get(POD_COUNT_VARIABLE, "1")) <= 1:
        return None
    missing = [name for name in (MAIN_ADDRESS_VARIABLE, MAIN_PORT_VARIABLE, NODE_INDEX_VARIABLE) if name not in environ]
    if missing:
        raise RuntimeError(f"{POD_COUNT_VARIABLE} is set but {missing} are not; cannot join the other pods.")
    return NodeSpec(
        nnodes=int(environ[POD_COUNT_VARIABLE]),
        node_rank=int(environ[NODE_INDEX_VARIABLE]),
        master_addr=environ[MAIN_ADDRESS_VARIABLE],
        master_port=int(environ[MAIN_PORT_VARIABLE]),
    )


def run_node(job_uri: str, published: PublishedJob) -> None:
    node = node_from_environment()
    pods = node.nnodes if node else 1
    if pods != published.nodes:
        raise RuntimeError(f"The job was published for {published.nodes} node(s) but runs on {pods} pod(s).")
    client = Client()
    model = client.get_artifact_version(published.base_model_id).load()
    dataset = client.get_artifact_version(published.dataset_id).load()  # unpacked into this pod's own cache
    # Resume checkpoints stay on this pod's disk under training.output_dir; best/last go to the artifact store.
    output_dir = Path(published.training.output_dir) / job_uri.rstrip("/").rsplit("/", 1)[-1]
    with tempfile.TemporaryDirectory(prefix="har-clip-node-") as job_dir:
        job = write_job(Path(job_dir), model, dataset, published.training, output_dir)
        launch_node(Path(job_dir), node)
        if node is None or node.node_rank == 0:  # static rendezvous: global rank 0 is local rank 0 of node 0
            upload_result(TrainingResult.model_validate_json(Path(job.result_file).read_text()), job_uri)


def upload_result(result: TrainingResult, job_uri: str) -> None:
    """`best/` and `last/` to `JOB_URI/checkpoints`, this pod's environment, then `result.json` pointing at them
    (written last: the load step takes it as the sign that everything else is there)."""
    with fileio.open(f"{job_uri}/{ENVIRONMENT_FILE}", "w") as handle:
        handle.write(training_environment(result, PROJECT_ROOT).model_dump_json(indent=2))
    stored = {}
    for name, local in (("best", result.best_checkpoint), ("last", result.last_checkpoint)):
        stored[name] = f"{job_uri}/{CHECKPOINTS_DIR}/{name}"
        io_utils.copy_dir(local, stored[name], overwrite=True)
    result = result.model_copy(update={"best_checkpoint": stored["best"], "last_checkpoint": stored["last"]})
    with fileio.open(f"{job_uri}/{RESULT_FILE}", "w") as handle:
        handle.write(result.model_dump_json(indent=2))


class NodeTerminated(RuntimeError):
    """This pod got SIGTERM: Kubernetes deletes the other pods of a Job once one failed (or it was cancelled)."""


def _on_sigterm(signum: int, frame: object) -> None:
    """Another pod failed (Kubernetes is deleting the Job's pods) or the run was cancelled. This pod's workers
    usually fail on their own a moment later with the real cause (a lost peer shows at their next collective), so
    unwind only if they have not within TERMINATION_GRACE_S, well inside Kubernetes' 30 s before SIGKILL."""
    signal.signal(signal.SIGALRM, _terminated)
    signal.alarm(TERMINATION_GRACE_S)


def _terminated(signum: int, frame: object) -> None:
    raise NodeTerminated("this pod was terminated (SIGTERM): another pod of the job failed, or it was cancelled")


def record_failure(published: PublishedJob, error: BaseException, node: str) -> None:
    """Put this pod's exception on the command step's run, where ZenML reads a failed step's cause from. A pod
    that was only terminated leaves the cause another pod recorded in place."""
    step_run = Client().get_pipeline_run(published.pipeline_run_id).steps[TRAIN_COMMAND_STEP]
    if isinstance(error, NodeTerminated) and step_run.exception_info is not None:
        return
    info = collect_exception_information(error)
    info.message = f"node {node} of {published.nodes}: {info.message}"
    Client().zen_store.update_run_step(step_run_id=step_run.id, step_run_update=StepRunUpdate(exception_info=info))


def main(job_uri: str) -> None:
    # On SIGTERM: record the cause and stop the torchrun workers (the launcher does) instead of dying mid-way.
    signal.signal(signal.SIGTERM, _on_sigterm)
    # A fresh process knows no `s3://` (or `gs://`) filesystem until the stack's artifact store is instantiated.
    store = Client().active_stack.artifact_store
    logger.info("Job %s in artifact store %s", job_uri, store.name)
    published = PublishedJob.read(job_uri)
    try:
        run_node(job_uri, published)
    except Exception as error:
        signal.alarm(0)  # recording the cause is what the grace period is for
        node = os.environ.get(NODE_INDEX_VARIABLE, "0")
        logger.error("Node %s failed: %s", node, error)
        try:
            record_failure(published, error, node)
        except Exception:  # the cause is in this pod's log either way
            logger.exception("Could not record the failure on step %s", TRAIN_COMMAND_STEP)
        raise


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m har_zenml.multinode_node JOB_URI")
    main(sys.argv[1])
