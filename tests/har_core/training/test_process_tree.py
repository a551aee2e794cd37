"""No worker survives its launcher: kill the process running the launch (SIGTERM, SIGKILL) while DDP x2 trains."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from har_core.training.launcher import worker_environment, write_job
from tests.conftest import PROJECT_ROOT
from tests.har_core.training.distributed_helpers import processes_mentioning, small_manifest, training_config

GONE_WITHIN_SECONDS = 5.0


def wait_until_gone(text: str, seconds: float) -> list[int]:
    """PIDs still mentioning `text` after up to `seconds` (empty as soon as none is left)."""
    deadline = time.monotonic() + seconds
    while (left := processes_mentioning(text)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_a_child_started_with_die_with_parent_dies_with_a_sigkilled_parent(tmp_path):
    marker = f"har-clip-orphan-check-{os.getpid()}-{tmp_path.name}"
    # The child's marker is put together at run time, so only the child's command line holds it.
    parent_code = textwrap.dedent(f"""
        import subprocess, sys, time
        from har_core.training.process_tree import die_with_parent
        marker = {marker[:-1]!r} + {marker[-1]!r}
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", marker], preexec_fn=die_with_parent)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code], cwd=PROJECT_ROOT, env=worker_environment())
    try:
        deadline = time.monotonic() + 60
        while not processes_mentioning(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_mentioning(marker), "the child never started"
        parent.kill()
        parent.wait()
        assert wait_until_gone(marker, GONE_WITHIN_SECONDS) == []
    finally:
        for pid in processes_mentioning(marker):
            os.kill(pid, signal.SIGKILL)


def start_ddp_launch(tiny_model, synthetic_root, root: Path) -> tuple[subprocess.Popen, Path]:
    """`python -m har_core.training.launcher JOB_DIR` (the pod's train step) training DDP x2 for long."""
    config = training_config(root / "checkpoints", "ddp", 2, epochs=200, early_stopping_patience=None)
    job_dir = root / "job"
    write_job(job_dir, tiny_model, small_manifest(synthetic_root), config, root / "checkpoints" / "run")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "har_core.training.launcher", str(job_dir)],
        env=worker_environment({"OMP_NUM_THREADS": "1"}),
        cwd=PROJECT_ROOT,
        start_new_session=True,
    )
    return launcher, job_dir


def wait_for_training(launcher: subprocess.Popen, job_dir: Path, timeout: float = 300) -> None:
    """Until both workers run and rank 0 has finished an epoch (so they are mid-training, not starting up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert launcher.poll() is None, f"the launcher exited early with {launcher.returncode}"
        workers = [pid for pid in processes_mentioning(str(job_dir)) if _is_worker(pid)]
        metrics = job_dir / "metrics.jsonl"
        if len(workers) == 2 and metrics.is_file() and metrics.read_text().strip():
            return
        time.sleep(0.2)
    raise AssertionError("DDP x2 never got through its first epoch")


def _is_worker(pid: int) -> bool:
    """A `python -m har_core.training.worker` process (torchrun's own command line names the module too)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"har_core.training.worker" in cmdline and b"torch.distributed.run" not in cmdline


@pytest.mark.slow
@pytest.mark.torchrun
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_killing_the_launching_process_leaves_no_worker(tiny_model, synthetic_root, tmp_path, sig):
    launcher, job_dir = start_ddp_launch(tiny_model, synthetic_root, tmp_path)
    try:
        wait_for_training(launcher, job_dir)
        launcher.send_signal(sig)  # this process only: torchrun and the workers sit in sessions of their own
        launcher.wait(timeout=30)
        # torchrun and both workers (their command lines name the job directory), not just any har_core.training.worker:
        # other test sessions on this machine may be training.
        assert wait_until_gone(str(job_dir), GONE_WITHIN_SECONDS) == []
    finally:
        for pid in processes_mentioning(str(job_dir)):
            os.kill(pid, signal.SIGKILL)


TREE_SCRIPT = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only SIGKILL ends this one
grandchild = subprocess.Popen(
    [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"],
    start_new_session=True,  # a session of its own, as BentoML's and torchrun's workers are: no group signal reaches it
)
print(grandchild.pid, flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("group", [False, True])
def test_stop_process_tree_ends_every_descendant_and_keeps_the_exit_status(group):
    from har_core.training.process_tree import descendants, stop_process_tree

    process = subprocess.Popen(
        [sys.executable, "-c", TREE_SCRIPT], stdout=subprocess.PIPE, text=True, start_new_session=group
    )
    grandchild = int(process.stdout.readline())
    assert descendants(process.pid) == [grandchild]
    started = time.monotonic()
    stop_process_tree(process, grace_s=0.5, group=group)
    assert process.returncode == -signal.SIGKILL  # the SIGTERM was ignored, so SIGKILL after the grace period
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 5
    while not _ended(grandchild) and time.monotonic() < deadline:  # the orphan's new parent reaps it
        time.sleep(0.05)
    assert _ended(grandchild)
    process.stdout.close()


def _ended(pid: int) -> bool:
    """Gone, or a zombie its new parent has not reaped yet."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_process_tree_of_a_process_that_already_ended_returns_at_once():
    from har_core.training.process_tree import stop_process_tree

    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    stop_process_tree(process, grace_s=30, group=True)
    assert process.returncode == 3
