"""Kill a real training process tree with SIGKILL after k steps, resume with `latest`, get the same weights."""

import functools
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from har_core.model.classifier import HarClipClassifier
from har_core.training.checkpoint import RESUME_DIR
from har_core.training.job import RESULT_FILE
from har_core.training.launcher import worker_environment, write_job
from har_core.training.trainer import TrainingResult
from tests.conftest import PROJECT_ROOT
from tests.har_core.training.distributed_helpers import (
    kill_tree,
    max_difference,
    processes_mentioning,
    small_manifest,
    training_config,
    weights,
)

pytestmark = [pytest.mark.slow, pytest.mark.torchrun]

EVERY = 3  # checkpoint every 3 optimiser steps; 8 steps per epoch, 24 in all


def start(job_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "har_core.training.launcher", str(job_dir)],
        env=worker_environment({"OMP_NUM_THREADS": "1"}),  # the same thread count in every run
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )


def train(tiny_model, manifest, root: Path, name: str, strategy: str, nproc: int, **overrides) -> subprocess.Popen:
    config = training_config(
        root, strategy, nproc, epochs=3, checkpoint_every_n_steps=EVERY, keep_last_n=2, **overrides
    )
    write_job(root / f"job-{name}", tiny_model, manifest, config, root / name)
    return start(root / f"job-{name}")


# Single process on CPU: bit for bit. DDP x2: the same gloo all-reduce order on both runs; seen bit-identical
# as well, asserted to 1e-6 (the RNG and optimizer state are restored per rank). FSDP x2 under a bf16
# MixedPrecisionPolicy: the fp32 shards and AdamW state go through torch.distributed.checkpoint and come back
# exactly; seen bit-identical, asserted to 1e-6.
@pytest.mark.parametrize(
    ("strategy", "nproc", "precision", "tolerance"),
    [("none", 1, "fp32", 0.0), ("ddp", 2, "fp32", 1e-6), ("fsdp", 2, "bf16", 1e-6)],
)
def test_a_killed_run_resumes_from_latest_to_the_uninterrupted_weights(
    tiny_model, synthetic_root, tmp_path, strategy, nproc, precision, tolerance
):
    manifest = small_manifest(synthetic_root)
    reference_root, killed_root = tmp_path / "reference", tmp_path / "killed"
    run = functools.partial(train, tiny_model, manifest, strategy=strategy, nproc=nproc, precision=precision)
    assert run(reference_root, "run").wait(timeout=600) == 0

    victim = run(killed_root, "run-1")
    checkpoints = killed_root / "run-1" / RESUME_DIR
    while not any(checkpoints.glob("step-*")) and victim.poll() is None:
        time.sleep(0.01)
    kill_tree(victim.pid)  # the launcher, torchrun and every worker
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_root / "job-run-1" / RESULT_FILE).exists(), "the run finished before it could be killed"
    assert processes_mentioning(str(killed_root / "job-run-1")) == []

    resumed_run = run(killed_root, "run-2", resume_from="latest")
    assert resumed_run.wait(timeout=600) == 0
    resumed = TrainingResult.model_validate_json((killed_root / "job-run-2" / RESULT_FILE).read_text())
    reference = TrainingResult.model_validate_json((reference_root / "job-run" / RESULT_FILE).read_text())
    step = int(Path(resumed.resumed_from).name.removeprefix("step-"))
    assert Path(resumed.resumed_from).parent == checkpoints and 0 < step < 24 and step % EVERY == 0
    for resumed_epoch, reference_epoch in zip(resumed.history, reference.history, strict=True):
        assert resumed_epoch.val_accuracy == reference_epoch.val_accuracy
        assert resumed_epoch.train_loss == pytest.approx(reference_epoch.train_loss, rel=1e-6)
    if strategy == "none":
        assert resumed.history == reference.history  # every epoch's metrics, including the interrupted one
    for name in ("last", "best"):
        a = weights(HarClipClassifier.load(reference_root / "run" / name))
        b = weights(HarClipClassifier.load(killed_root / "run-2" / name))
        assert max_difference(a, b) <= tolerance, name
    kept = sorted(path.name for path in (killed_root / "run-2" / RESUME_DIR).iterdir())
    assert kept == ["step-00000021", "step-00000024"]  # keep_last_n: 2
