"""Kill a real training process tree with SIGKILL after k steps, resume with `latest`, get the same weights."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from har_core.checkpoint import RESUME_DIR
from har_core.job import RESULT_FILE
from har_core.launch import worker_environment, write_job
from har_core.model import HarClipClassifier
from har_core.training import TrainingResult
from tests.conftest import PROJECT_ROOT
from tests.har_core.distributed_helpers import small_manifest, training_config, weights

pytestmark = pytest.mark.slow

EVERY = 3  # checkpoint every 3 optimiser steps; 8 steps per epoch, 24 in all


def start(job_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "har_core.launch", str(job_dir)],
        env=worker_environment({"OMP_NUM_THREADS": "1"}),
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )


def train(tiny_model, manifest, root: Path, name: str, **overrides) -> subprocess.Popen:
    config = training_config(root, epochs=3, checkpoint_every_n_steps=EVERY, keep_last_n=2, **overrides)
    write_job(root / f"job-{name}", tiny_model, manifest, config, root / name)
    return start(root / f"job-{name}")


def test_a_killed_run_resumes_from_latest_to_the_uninterrupted_weights(tiny_model, synthetic_root, tmp_path):
    manifest = small_manifest(synthetic_root)
    reference_root, killed_root = tmp_path / "reference", tmp_path / "killed"
    assert train(tiny_model, manifest, reference_root, "run").wait(timeout=600) == 0

    victim = train(tiny_model, manifest, killed_root, "run-1")
    checkpoints = killed_root / "run-1" / RESUME_DIR
    while not any(checkpoints.glob("step-*")) and victim.poll() is None:
        time.sleep(0.01)
    os.killpg(victim.pid, signal.SIGKILL)  # the launcher and everything it started
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not (killed_root / "job-run-1" / RESULT_FILE).exists(), "the run finished before it could be killed"

    assert train(tiny_model, manifest, killed_root, "run-2", resume_from="latest").wait(timeout=600) == 0
    resumed = TrainingResult.model_validate_json((killed_root / "job-run-2" / RESULT_FILE).read_text())
    reference = TrainingResult.model_validate_json((reference_root / "job-run" / RESULT_FILE).read_text())
    step = int(Path(resumed.resumed_from).name.removeprefix("step-"))
    assert Path(resumed.resumed_from).parent == checkpoints and 0 < step < 24 and step % EVERY == 0
    assert resumed.history == reference.history  # every epoch's metrics, including the interrupted one
    for name in ("last", "best"):  # bit for bit: single process on CPU
        a = weights(HarClipClassifier.load(reference_root / "run" / name))
        b = weights(HarClipClassifier.load(killed_root / "run-2" / name))
        assert all((a[key] == b[key]).all() for key in a), name
    kept = sorted(path.name for path in (killed_root / "run-2" / RESUME_DIR).iterdir())
    assert kept == ["step-00000021", "step-00000024"]  # keep_last_n: 2
