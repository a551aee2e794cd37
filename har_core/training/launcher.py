"""Launch `Trainer` workers with PyTorch's elastic launcher (torchrun) and hand back single-process outputs.

The caller (the train step) writes the base model, manifest and config into a job directory, starts
`python -m torch.distributed.run ... -m har_core.training.worker JOB_DIR` in its own process session, relays the
per-epoch metrics rank 0 appends as they arrive, and stops the session on the way out. torchrun and each worker
also hold the parent-death signal (`har_core.training.process_tree`): torchrun dies with the thread that launched it and
the workers (each in a session of its own) with torchrun, so no worker outlives the call, even when the caller
is SIGKILLed and runs no cleanup. A failed worker's exception (torchrun's error file, written by `@record`) becomes the
message of `WorkerFailedError`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

import har_core
from har_core.config import TrainingConfig
from har_core.data.dataset import DatasetManifest
from har_core.model.classifier import HarClipClassifier
from har_core.runtime.device import resolve_device
from har_core.training.checkpoint import ModelIdentity, resolve_resume
from har_core.training.distributed import per_rank_batch_size, resolve_backend
from har_core.training.job import BASE_MODEL_DIR, LOG_DIR, MANIFEST_FILE, TrainingJob
from har_core.training.process_tree import die_with_parent, stop_process_tree
from har_core.training.trainer import EpochMetrics, TrainingResult, train_classifier

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
# torchrun passes SIGTERM on to its workers; whatever is left after the grace is SIGKILLed, and the workers then
# die with torchrun (parent-death signal), whatever torchrun's own 30 s shutdown timeout would have waited.
TERMINATE_GRACE_SECONDS = 10.0


class WorkerFailedError(RuntimeError):
    """A torchrun worker failed; the message carries the worker's own exception text."""


@dataclass(frozen=True)
class NodeSpec:
    """Where this launcher sits in a multi-node job (static rendezvous at the main node's address and port).

    Whoever starts the nodes fills it in (the multi-node train command reads it from its pod's variables).
    """

    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int


def resolve_nproc(config: TrainingConfig) -> int:
    """Workers on this node: `auto` is one per GPU (1 without CUDA); more than the GPUs present is an error."""
    device = resolve_device(config.device)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    wanted = config.distributed.nproc_per_node
    if wanted == "auto":
        return max(gpus, 1)
    if gpus and wanted > gpus:
        raise ValueError(
            f"training.distributed.nproc_per_node is {wanted} but this machine has {gpus} GPU(s); "
            f"use nproc_per_node: auto or at most {gpus}."
        )
    return wanted


def check_launch(config: TrainingConfig, model: HarClipClassifier, nnodes: int = 1) -> int:
    """Every check that can fail before a worker starts; returns the number of workers for this node."""
    if config.distributed.strategy == "none":
        raise ValueError("training.distributed.strategy is 'none'; train in this process instead of launching.")
    nproc = resolve_nproc(config)
    per_rank_batch_size(config.batch_size, nproc * nnodes)
    resolve_backend(config.distributed.backend, resolve_device(config.device))
    resolve_resume(config.resume_from, config.output_dir, ModelIdentity.of(model))
    return nproc


def write_job(
    job_dir: Path, model: HarClipClassifier, manifest: DatasetManifest, config: TrainingConfig, output_dir: Path
) -> TrainingJob:
    """Hand-over files for the workers: base model (`save` layout), manifest JSON, job JSON."""
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    model.save(job_dir / BASE_MODEL_DIR)
    (job_dir / MANIFEST_FILE).write_text(manifest.model_dump_json())
    job = TrainingJob.in_directory(job_dir, config, output_dir)
    job.save(job_dir)
    return job


def torchrun_command(job_dir: Path, nproc: int, node: NodeSpec | None = None) -> list[str]:
    """`python -m torch.distributed.run` for one node: standalone rendezvous, or static at the main node."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}", "--max-restarts=0"]
    if node is None:
        command.append("--standalone")
    else:
        command += [
            f"--nnodes={node.nnodes}",
            f"--node-rank={node.node_rank}",
            f"--master-addr={node.master_addr}",
            f"--master-port={node.master_port}",
        ]
    log_dir = Path(job_dir).resolve() / LOG_DIR / f"node{node.node_rank if node else 0}"
    command += [f"--log-dir={log_dir}", "-m", "har_core.training.worker", str(Path(job_dir).resolve())]
    return command


def worker_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The caller's environment with this checkout first on PYTHONPATH, so workers import the same code."""
    environment = dict(os.environ)
    project_root = str(Path(har_core.__file__).resolve().parents[1])
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [project_root, environment.get("PYTHONPATH")]))
    environment.setdefault("TOKENIZERS_PARALLELISM", "false")
    environment.update(extra or {})
    return environment


def run_workers(
    job: TrainingJob,
    job_dir: Path,
    nproc: int,
    node: NodeSpec | None = None,
    on_epoch_end: Callable[[EpochMetrics], None] | None = None,
    extra_environment: Mapping[str, str] | None = None,
) -> None:
    """Run torchrun to completion, relaying metrics as they come; no worker survives this call."""
    command = torchrun_command(job_dir, nproc, node)
    logger.info("Launching %d worker(s): %s", nproc, " ".join(command))
    process = subprocess.Popen(
        command, env=worker_environment(extra_environment), start_new_session=True, preexec_fn=die_with_parent
    )
    relay = MetricsRelay(Path(job.metrics_file), on_epoch_end)
    try:
        while process.poll() is None:
            relay.poll()
            time.sleep(POLL_SECONDS)
        relay.poll()
    finally:
        stop_process_tree(process, TERMINATE_GRACE_SECONDS, group=True)  # the workers die with torchrun
    if process.returncode != 0:
        raise WorkerFailedError(failure_message(Path(job_dir) / LOG_DIR, process.returncode))


def failure_message(log_dir: Path, returncode: int) -> str:
    """The first failing worker's exception, read from torchrun's error files."""
    messages = []
    for error_file in sorted(Path(log_dir).glob("**/error.json")):
        try:
            payload = json.loads(error_file.read_text())["message"]
        except (ValueError, KeyError):
            continue
        text = payload.get("message") if isinstance(payload, dict) else str(payload)
        rank = error_file.parent.name
        messages.append(f"worker (local rank {rank}) failed: {text}")
    if not messages:
        return f"torchrun exited with status {returncode} and no worker error file; see the step's log."
    return "\n".join(messages)


class MetricsRelay:
    """Tails rank 0's metrics.jsonl and hands each complete line to the callback once."""

    def __init__(self, path: Path, callback: Callable[[EpochMetrics], None] | None) -> None:
        self.path, self.callback, self.offset = path, callback, 0

    def poll(self) -> None:
        if not self.path.is_file():
            return
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(complete)
        for line in complete.decode().splitlines():
            if line.strip() and self.callback is not None:
                self.callback(EpochMetrics.model_validate_json(line))


def launch_training(
    model: HarClipClassifier,
    manifest: DatasetManifest,
    config: TrainingConfig,
    output_dir: Path,
    job_dir: Path,
    on_epoch_end: Callable[[EpochMetrics], None] | None = None,
) -> tuple[HarClipClassifier, TrainingResult]:
    """Check, launch, wait; then load the best model and the result rank 0 wrote, as `train_classifier` returns."""
    nproc = check_launch(config, model)
    job = write_job(job_dir, model, manifest, config, output_dir)
    run_workers(job, job_dir, nproc, on_epoch_end=on_epoch_end)
    result = TrainingResult.model_validate_json(Path(job.result_file).read_text())
    return HarClipClassifier.load(result.best_checkpoint), result


def run_training(
    model: HarClipClassifier,
    manifest: DatasetManifest,
    config: TrainingConfig,
    output_dir: Path,
    job_dir: Path,
    on_epoch_end: Callable[[EpochMetrics], None] | None = None,
) -> tuple[HarClipClassifier, TrainingResult]:
    """Train in this process (`strategy: none`) or in torchrun workers; the outputs are the same either way."""
    if config.distributed.strategy == "none":
        return train_classifier(
            model, manifest.split("train"), manifest.split("val"), config, output_dir, on_epoch_end=on_epoch_end
        )
    return launch_training(model, manifest, config, output_dir, job_dir, on_epoch_end)


def launch_node(job_dir: Path, node: NodeSpec | None = None) -> None:
    """One node's share of a prepared job: torchrun with the given node layout (None: this node alone).

    Every node of a multi-node job runs this on its own copy of the job; `strategy: none` trains in this process.
    """
    job = TrainingJob.load(job_dir)
    if job.config.distributed.strategy == "none":
        from har_core.training.worker import main as run_worker

        run_worker(str(job_dir))
        return
    nproc = resolve_nproc(job.config)
    per_rank_batch_size(job.config.batch_size, nproc * (node.nnodes if node else 1))
    run_workers(job, Path(job_dir), nproc, node)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    if len(sys.argv) not in (2, 6):
        raise SystemExit(
            "usage: python -m har_core.training.launcher JOB_DIR [NNODES NODE_RANK MASTER_ADDR MASTER_PORT]"
        )
    layout = None
    if len(sys.argv) == 6:
        layout = NodeSpec(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    launch_node(Path(sys.argv[1]), layout)
