"""Kill the train step's process (the `local_process` step operator's) while DDP x2 trains: no worker is left.

SIGTERM goes through ZenML's step signal handler (the step raises, the launcher stops torchrun's session); SIGKILL
runs no code at all in the step, and only the parent-death signal stops torchrun and its workers.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.har_core.training.distributed_helpers import kill_tree, processes_mentioning
from tests.har_core.training.test_process_tree import wait_until_gone
from tests.pipelines.test_training_pipeline import quickstart_config_in

pytestmark = [pytest.mark.slow, pytest.mark.torchrun]

GONE_WITHIN_SECONDS = 5.0


def long_ddp_config(directory: Path) -> Path:
    path = quickstart_config_in(directory)
    config = yaml.safe_load(path.read_text())
    config["parameters"]["data"]["synthetic"] = {"images_per_class": 8, "image_size": 64, "seed": 0}
    config["parameters"]["training"].update(
        epochs=200,
        batch_size=8,
        early_stopping_patience=None,
        distributed={"strategy": "ddp", "nproc_per_node": 2, "backend": "gloo"},
    )
    path.write_text(yaml.safe_dump(config))
    return path


def training_workers(tmpdir: Path) -> tuple[int | None, list[int]]:
    """torchrun's PID and its workers' PIDs among the processes of this run (their job folder is in `tmpdir`)."""
    launcher, workers = None, []
    for pid in processes_mentioning(str(tmpdir)):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"har_core.training.worker" in cmdline and b"torch.distributed.run" not in cmdline:
            workers.append(pid)
        elif b"torch.distributed.run" in cmdline:
            launcher = pid
    return launcher, workers


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_the_train_step_leaves_no_worker(zenml_client, tmp_path, sig):
    tmpdir = tmp_path / "tmp"  # the step's job folder lands here, so this run's processes can be told apart
    tmpdir.mkdir()
    run = subprocess.Popen(
        [sys.executable, "run.py", "--pipeline", "training", "--config", str(long_ddp_config(tmp_path)), "--no-cache"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "TMPDIR": str(tmpdir), "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            assert run.poll() is None, f"the pipeline ended before training ({run.returncode})"
            torchrun, workers = training_workers(tmpdir)
            if torchrun and len(workers) == 2 and any(s.read_text() for s in tmpdir.glob("*/metrics.jsonl")):
                break
            time.sleep(0.5)
        else:
            raise AssertionError("DDP x2 never got through its first epoch")
        step_process = parent_of(torchrun)
        assert step_process != run.pid  # the local_process step operator's process, not the orchestrator
        os.kill(step_process, sig)
        assert wait_until_gone(str(tmpdir), GONE_WITHIN_SECONDS) == []
        assert run.wait(timeout=300) != 0  # the step failed, and with it the run
    finally:
        kill_tree(run.pid)
        run.wait()
