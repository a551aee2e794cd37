"""DDP and FSDP with real torch.distributed processes (torchrun, gloo, CPU) on the tiny CLIP."""

import copy
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from har_core.model.classifier import HarClipClassifier
from har_core.training.job import LOG_DIR, METRICS_FILE
from har_core.training.launcher import run_training, worker_environment, write_job
from har_core.training.trainer import TrainingResult
from tests.conftest import PROJECT_ROOT
from tests.har_core.training import fsdp_logits_worker
from tests.har_core.training.distributed_helpers import (
    kill_tree,
    max_difference,
    process_tree,
    relative_difference,
    small_manifest,
    training_config,
    weights,
)

pytestmark = [pytest.mark.slow, pytest.mark.torchrun]


@pytest.fixture(scope="module")
def manifest(synthetic_root):
    return small_manifest(synthetic_root)


@pytest.fixture(scope="module")
def single_and_ddp(tiny_model, manifest, tmp_path_factory):
    """The same config trained in one process and in two DDP workers (global batch 8 both times)."""
    runs = {}
    for strategy, nproc in (("none", 1), ("ddp", 2)):
        root = tmp_path_factory.mktemp(strategy)
        relayed = []
        model, result = run_training(
            HarClipClassifier.load(tiny_model.save(root / "base")),
            manifest,
            training_config(root / "checkpoints", strategy, nproc),
            root / "checkpoints" / "run",
            root / "job",
            on_epoch_end=relayed.append,
        )
        runs[strategy] = (model, result, relayed, root)
    return runs


def test_ddp_on_two_processes_trains_the_same_weights_as_one_process(single_and_ddp, tiny_model):
    (single, single_result, _, _), (ddp, ddp_result, _, _) = single_and_ddp["none"], single_and_ddp["ddp"]
    assert ddp_result.world_size == 2 and ddp_result.strategy == "ddp"
    # Same global batches in the same order; only the float summation order of the gradient all-reduce
    # differs. Seen: max |diff| 2.8e-4 after 8 AdamW steps at lr 2e-3 (a step moves weights by ~2e-3).
    a, b = weights(single), weights(ddp)
    assert max_difference(a, b) < 2e-3
    assert relative_difference(a, b, weights(tiny_model)) < 0.02
    # Metrics are reduced over ranks, so they are the single-process figures.
    for one, two in zip(single_result.history, ddp_result.history, strict=True):
        assert two.val_accuracy == one.val_accuracy
        assert two.train_accuracy == one.train_accuracy
        assert two.train_loss == pytest.approx(one.train_loss, rel=1e-4)
    assert ddp_result.best_epoch == single_result.best_epoch


def test_ddp_with_bf16_autocast_trains_close_to_the_fp32_run(single_and_ddp, tiny_model, manifest, tmp_path):
    """The same DDP x2 run as the fixture's, under CPU bf16 autocast."""
    fp32_model, fp32_result, _, _ = single_and_ddp["ddp"]
    model, result = run_training(
        HarClipClassifier.load(tiny_model.save(tmp_path / "base")),
        manifest,
        training_config(tmp_path / "checkpoints", "ddp", 2, precision="bf16"),
        tmp_path / "checkpoints" / "run",
        tmp_path / "job",
    )
    assert result.precision == "bf16" and fp32_result.precision == "fp32" and result.world_size == 2
    losses = [epoch.train_loss for epoch in result.history]
    assert losses[-1] < losses[0], losses
    a, b = weights(model), weights(fp32_model)
    assert {tensor.dtype for tensor in a.values()} == {torch.float32}  # autocast leaves the weights in fp32
    # The fp32 run is deterministic, so any difference is bf16 arithmetic; it stays a small part of how far
    # training moved the weights. Seen: max |diff| 9.3e-3, 4.7% of the distance moved; loss 2.776 -> 2.447.
    assert max_difference(a, b) > 0
    assert relative_difference(a, b, weights(tiny_model)) < 0.2


def test_rank_zero_alone_writes_metrics_and_checkpoints(single_and_ddp):
    _, result, relayed, root = single_and_ddp["ddp"]
    lines = (root / "job" / METRICS_FILE).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert [metrics.epoch for metrics in relayed] == [1, 2]
    assert relayed == result.history
    run_dir = root / "checkpoints" / "run"
    assert sorted(path.name for path in run_dir.iterdir()) == ["best", "last", "resume"]
    (checkpoint,) = (run_dir / "resume").iterdir()  # keep_last_n: 1
    files = sorted(path.name for path in checkpoint.iterdir())
    assert files == [
        "model.safetensors",
        "optimizer.pt",
        "rng-rank0.pt",
        "rng-rank1.pt",
        "schedule.pt",
        "trainer_state.json",
    ]


# fp32, and bf16/fp16 through FSDP's MixedPrecisionPolicy: the GPU code path (low-precision compute, fp32
# reduction, fp32 sharded weights; fp16 with the sharded grad scaler) run on CPU with gloo.
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_fsdp_trains_and_consolidates_to_a_loadable_model(tiny_model, manifest, tmp_path, precision):
    config = training_config(tmp_path / "checkpoints", "fsdp", 2, epochs=3, precision=precision)
    job = write_job(tmp_path / "job", tiny_model, manifest, config, tmp_path / "checkpoints" / "run")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--standalone"]
    command += [f"--log-dir={tmp_path / LOG_DIR}", fsdp_logits_worker.__file__, str(tmp_path / "job")]
    subprocess.run(command, env=worker_environment(), cwd=PROJECT_ROOT, check=True, timeout=600)
    result = TrainingResult.model_validate_json(Path(job.result_file).read_text())
    losses = [epoch.train_loss for epoch in result.history]
    assert result.strategy == "fsdp" and result.world_size == 2 and result.precision == precision
    assert losses[-1] < losses[0], losses
    sharded_logits = torch.load(tmp_path / "job" / fsdp_logits_worker.LOGITS_FILE, weights_only=True)
    consolidated = HarClipClassifier.load(f"{job.output_dir}/last")
    assert {tensor.dtype for tensor in consolidated.state_dict().values()} == {torch.float32}  # the fp32 shards
    batch = fsdp_logits_worker.fixed_batch(consolidated.preprocess_config.crop_size)
    with torch.no_grad():
        single_logits = consolidated(batch)
    if precision == "fp32":
        assert sharded_logits.dtype == torch.float32
        torch.testing.assert_close(single_logits, sharded_logits, rtol=1e-5, atol=1e-5)
    else:
        # The policy casts the consolidated fp32 weights and the input to the low dtype and computes every op in
        # it: the consolidated model cast the same way gives the sharded logits (seen: identical; asserted within
        # torch's tolerance for the dtype), and in fp32 it stays close to them (seen: max |diff| 0.047 for bf16,
        # 0.004 for fp16, on logits of about ±14).
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        assert sharded_logits.dtype == dtype
        with torch.no_grad():
            low_logits = copy.deepcopy(consolidated).to(dtype)(batch.to(dtype))
        torch.testing.assert_close(low_logits, sharded_logits)
        assert (single_logits - sharded_logits.float()).abs().max() < 0.25
    assert consolidated.clip.logit_scale.dim() == 0  # back to CLIP's own 0-dim shape
    with torch.no_grad():
        assert not torch.equal(single_logits, tiny_model(fsdp_logits_worker.fixed_batch(64)))
    sharded_checkpoint = next((tmp_path / "checkpoints" / "run" / "resume").iterdir())
    assert (sharded_checkpoint / "sharded" / ".metadata").is_file()
    # Rank 1 started from a meta-device skeleton: its non-persistent buffers (the cached text features, CLIP's
    # position ids) are rank 0's, which are the model's own.
    ranks = [torch.load(tmp_path / "job" / fsdp_logits_worker.BUFFERS_FILE.format(rank=r)) for r in (0, 1)]
    assert set(ranks[0]) == {"text_features", *(n for n, _ in tiny_model.named_buffers() if "position_ids" in n)}
    for name, buffer in dict(tiny_model.named_buffers()).items():
        assert torch.equal(ranks[0][name], buffer) and torch.equal(ranks[1][name], buffer), name


def test_fsdp_built_on_the_meta_device_trains_the_weights_of_ddp(single_and_ddp, tiny_model, manifest, tmp_path):
    """FSDP x2 in fp32, rank 1 starting from a meta-device skeleton and rank 0's broadcast weights, against the
    fixture's DDP x2 run: the same global batches, so the same weights up to the order of float sums."""
    ddp, ddp_result, _, _ = single_and_ddp["ddp"]
    model, result = run_training(
        HarClipClassifier.load(tiny_model.save(tmp_path / "base")),
        manifest,
        training_config(tmp_path / "checkpoints", "fsdp", 2),
        tmp_path / "checkpoints" / "run",
        tmp_path / "job",
    )
    assert result.strategy == "fsdp" and result.world_size == 2
    a, b = weights(model), weights(ddp)
    assert max_difference(a, b) < 2e-3  # as DDP against one process: reduction order only
    assert relative_difference(a, b, weights(tiny_model)) < 0.02
    assert [epoch.val_accuracy for epoch in result.history] == [epoch.val_accuracy for epoch in ddp_result.history]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_launchers_of_one_job_train_the_same_weights_as_one_node(single_and_ddp, tiny_model, manifest, tmp_path):
    """Two launcher processes, 1 worker each, joined at 127.0.0.1 as nodes 0 and 1 of 2."""
    _, ddp_result, _, _ = single_and_ddp["ddp"]
    config = training_config(tmp_path / "checkpoints", "ddp", 1)
    job = write_job(tmp_path / "job", tiny_model, manifest, config, tmp_path / "checkpoints" / "run")
    port = str(free_port())
    launchers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "har_core.training.launcher",
                str(tmp_path / "job"),
                "2",
                str(index),
                "127.0.0.1",
                port,
            ],
            # One thread per worker, as torchrun sets for the single-node 2-process run.
            env=worker_environment({"OMP_NUM_THREADS": "1"}),
            cwd=PROJECT_ROOT,
            start_new_session=True,
        )
        for index in range(2)
    ]
    try:
        assert [launcher.wait(timeout=600) for launcher in launchers] == [0, 0]
    finally:
        for launcher in launchers:
            if launcher.poll() is None:
                os.killpg(launcher.pid, signal.SIGKILL)
    result = TrainingResult.model_validate_json(Path(job.result_file).read_text())
    assert result.world_size == 2
    assert [epoch.val_accuracy for epoch in result.history] == [epoch.val_accuracy for epoch in ddp_result.history]
    two_nodes = weights(HarClipClassifier.load(result.best_checkpoint))
    one_node = weights(HarClipClassifier.load(ddp_result.best_checkpoint))
    # Same ranks, shards, thread count and gloo all-reduce: the single-node run is reproduced exactly.
    assert max_difference(two_nodes, one_node) == 0.0


LOOPBACK = "127.0.0.1"


def test_a_frozen_node_fails_the_other_within_the_process_group_timeout(tiny_model, manifest, tmp_path):
    """Node 1 stops answering (SIGSTOP of its whole tree: sockets stay open, as with a partitioned pod); node 0's
    next collective must fail after `distributed.timeout_s`, not after gloo's default 30 minutes."""
    timeout_s = 10
    distributed = {"strategy": "ddp", "nproc_per_node": 1, "backend": "gloo", "timeout_s": timeout_s}
    config = training_config(tmp_path / "checkpoints", epochs=500, distributed=distributed)
    write_job(tmp_path / "job", tiny_model, manifest, config, tmp_path / "checkpoints" / "run")
    port = str(free_port())
    logs = [tmp_path / f"node{index}.log" for index in range(2)]
    launchers = []
    for index, log in enumerate(logs):
        with log.open("wb") as output:
            launchers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "har_core.training.launcher",
                        str(tmp_path / "job"),
                        "2",
                        str(index),
                        LOOPBACK,
                        port,
                    ],
                    env=worker_environment({"OMP_NUM_THREADS": "1"}),
                    cwd=PROJECT_ROOT,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        deadline = time.monotonic() + 600
        while "epoch 1:" not in logs[0].read_text(errors="replace"):
            assert time.monotonic() < deadline and launchers[0].poll() is None, logs[0].read_text()[-3000:]
            time.sleep(0.2)
        for pid in process_tree(launchers[1].pid):
            os.kill(pid, signal.SIGSTOP)
        frozen_at = time.monotonic()
        returncode = launchers[0].wait(timeout=timeout_s + 120)
        failed_after = time.monotonic() - frozen_at
    finally:
        for launcher in launchers:
            kill_tree(launcher.pid)
            launcher.wait()
    output = logs[0].read_text(errors="replace")
    print(f"node 0 failed {failed_after:.1f} s after node 1 froze (timeout_s {timeout_s})")
    assert returncode != 0 and "WorkerFailedError" in output
    assert re.search(r"[Tt]imed out|[Tt]imeout", output.rsplit("WorkerFailedError", 1)[1]), output[-3000:]
    assert timeout_s - 1 <= failed_after < timeout_s + 90
