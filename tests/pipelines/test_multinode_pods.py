"""The multi-node pipeline as a cluster runs it: two pods that share only the network and an S3 bucket.

The stack: local orchestrator, S3 artifact store on a moto server (127.0.0.1), and the `separate_pods` step
operator (tests/stacks/separate_pods.py): the command step runs as two `python -m har_zenml.multinode_node` processes,
each in its own working directory with its own `$HOME` and `$TMPDIR`, fed only ZenML's step-operator environment
and the variables ZenML's Kubernetes step operator sets. The folder `load_data` read (and every dataset unpacked so
far) is deleted before the second step starts; the publish step writes nothing locally for the pods: they load the
base model and the images from their artifacts.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli.multinode_command import main
from har_core.config import TrainingConfig
from har_core.training.launcher import run_training
from har_zenml.names import (
    BASE_MODEL_ARTIFACT,
    DATASET_ARTIFACT,
    TRAIN_COMMAND_STEP,
    TRAINED_MODEL_ARTIFACT,
    TRAINING_RESULT_ARTIFACT,
)
from stacks.register import ComponentSpec, FlavorSpec, SecretSpec, StackSpec, register_stack
from stacks.servers import moto_s3_server
from tests.har_core.training.distributed_helpers import kill_tree, max_difference, processes_mentioning, weights
from tests.pipelines.pipeline_runs import tiny_config
from tests.stacks import separate_pods

pytestmark = [pytest.mark.slow, pytest.mark.torchrun]

BUCKET = "har-clip-pods"
TIMEOUT_S = 30  # training.distributed.timeout_s of these runs


def pods_stack_spec(s3_url: str, pods_root: Path) -> StackSpec:
    return StackSpec(
        name="separate-pods",
        flavors=[FlavorSpec(type="step_operator", source=separate_pods.FLAVOR_SOURCE)],
        secrets=[SecretSpec(name="s3_pods", values={"key": "testing", "secret": "testing"})],
        components={
            "orchestrator": [ComponentSpec(name="local_orchestrator", flavor="local")],
            "artifact_store": [
                ComponentSpec(
                    name="s3_pods_store",
                    flavor="s3",
                    configuration={
                        "path": f"s3://{BUCKET}",
                        "key": "{{s3_pods.key}}",
                        "secret": "{{s3_pods.secret}}",
                        "client_kwargs": {"endpoint_url": s3_url, "region_name": "us-east-1"},
                    },
                )
            ],
            "step_operator": [
                ComponentSpec(
                    name="separate_pods", flavor=separate_pods.FLAVOR_NAME, configuration={"root": str(pods_root)}
                )
            ],
        },
    )


def pods_config(workdir: Path, name: str, epochs: int) -> Path:
    path = tiny_config(workdir, name=f"{name}.yaml", synthetic={"images_per_class": 8, "image_size": 32, "seed": 3})
    config = yaml.safe_load(path.read_text())
    config["parameters"]["nodes"] = 2
    config["parameters"]["training"].update(
        epochs=epochs,
        batch_size=8,
        # Relative: each pod's own working directory, as on a pod's own disk.
        output_dir="checkpoints",
        distributed={"strategy": "ddp", "nproc_per_node": 1, "backend": "gloo", "timeout_s": TIMEOUT_S},
    )
    config["parameters"]["export"].update(formats=["pytorch"], output_dir=str(workdir / "exports"))
    config["parameters"]["benchmark"].update(latency_iterations=2, throughput_iterations=1, warmup=1)
    config["steps"] = {
        # The folder load_data read, and every copy unpacked on this machine, is gone before the pods start.
        "load_base_model": {"start_hook_source": "tests.stacks.hooks.forget_local_data"},
        "publish_training_job": {"start_hook_source": "tests.stacks.hooks.forget_local_data"},
        TRAIN_COMMAND_STEP: {
            "step_operator": True,
            "settings": {
                "step_operator.separate_pods": {
                    "pod_count": 2,
                    # One thread per worker, as torchrun sets for the single-node 2-process run; nothing downloaded.
                    "environment": {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"},
                }
            },
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def pods_stack(zenml_client, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("pods")
    created_runs = []
    saved = {key: os.environ.get(key) for key in ("HAR_TEST_SOURCE_DIR", "HAR_CLIP_DATA_CACHE")}
    with moto_s3_server(workdir, BUCKET) as s3_url:
        os.environ["HAR_TEST_SOURCE_DIR"] = str(workdir / "data" / "synthetic-3")
        os.environ["HAR_CLIP_DATA_CACHE"] = str(workdir / "unpacked")
        try:
            register_stack(pods_stack_spec(s3_url, workdir / "pods"), activate=True)
            yield workdir, created_runs
        finally:
            zenml_client.activate_stack("local")
            for run in created_runs:  # their artifacts live in a bucket that goes away with the server
                if run.model_version is not None:
                    zenml_client.delete_model_version(run.model_version.id)
                zenml_client.delete_pipeline_run(run.id)
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def run_pipeline(zenml_client, config: Path, created_runs: list):
    previous = zenml_client.get_pipeline("multinode_training_pipeline").last_run.id if _has_runs(zenml_client) else None
    started = time.monotonic()
    result = CliRunner().invoke(main, ["--config", str(config)])
    elapsed = time.monotonic() - started
    run = zenml_client.get_pipeline("multinode_training_pipeline").last_run
    assert run.id != previous, result.output + repr(result.exception)
    created_runs.append(run)
    return run, result, elapsed


def _has_runs(zenml_client) -> bool:
    try:
        return zenml_client.get_pipeline("multinode_training_pipeline").last_run is not None
    except (KeyError, RuntimeError):
        return False


def pod_dirs(workdir: Path, run) -> list[Path]:
    step_run_id = run.steps[TRAIN_COMMAND_STEP].id
    return [workdir / "pods" / f"{step_run_id}-{index}" for index in range(2)]


@pytest.fixture(scope="module")
def two_pod_run(zenml_client, pods_stack):
    workdir, created_runs = pods_stack
    run, result, elapsed = run_pipeline(zenml_client, pods_config(workdir, "two-pods", epochs=2), created_runs)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return run, elapsed, workdir


def test_two_pods_complete_the_pipeline_through_the_bucket_alone(two_pod_run):
    run, elapsed, workdir = two_pod_run
    assert run.status.value == "completed" and run.steps[TRAIN_COMMAND_STEP].status.value == "completed"
    assert not (workdir / "data" / "synthetic-3").exists()  # deleted before the pods started
    result = run.steps["load_trained_model"].outputs[TRAINING_RESULT_ARTIFACT][0].load()
    job_uri = run.steps["publish_training_job"].run_metadata["job_uri"]
    assert result.world_size == 2 and job_uri.startswith(f"s3://{BUCKET}/")
    assert result.best_checkpoint == f"{job_uri}/checkpoints/best"
    job_id = job_uri.rsplit("/", 1)[-1]
    images = len(run.steps["load_data"].outputs[DATASET_ARTIFACT][0].load().all_records())
    for index, pod in enumerate(pod_dirs(workdir, run)):
        # Each pod unpacked the dataset's images.tar into its own folder (its temp dir or its home's cache) ...
        assert len(list(pod.rglob("*.jpg"))) == images, pod
        # ... and wrote its checkpoints under training.output_dir on its own disk: resume checkpoints on pod 0
        # (rank 0), nothing left behind on pod 1 (its partial copies are dropped).
        resume = pod / "work" / "checkpoints" / job_id / "resume"
        if index == 0:
            assert any(resume.glob("step-*/trainer_state.json"))
        else:
            assert not resume.is_dir() or not any(resume.iterdir())
    print(f"two-pod pipeline run: {elapsed:.0f} s")


def test_two_pods_train_the_weights_of_one_node_with_two_processes(two_pod_run, tmp_path):
    run, _, _ = two_pod_run
    trained = run.steps["load_trained_model"].outputs[TRAINED_MODEL_ARTIFACT][0].load()
    base = run.steps["load_base_model"].outputs[BASE_MODEL_ARTIFACT][0].load()
    dataset = run.steps["load_data"].outputs[DATASET_ARTIFACT][0].load()
    training = TrainingConfig.model_validate(run.config.parameters["training"])
    # The same job on one node: 2 worker processes instead of 2 pods x 1.
    distributed = training.distributed.model_copy(update={"nproc_per_node": 2})
    training = training.model_copy(update={"output_dir": tmp_path / "checkpoints", "distributed": distributed})
    one_node, result = run_training(base, dataset, training, tmp_path / "checkpoints" / "run", tmp_path / "job")
    assert result.world_size == 2
    difference = max_difference(weights(trained), weights(one_node))
    print(f"max |weight difference| two pods vs one node x 2 processes: {difference:.3g}")
    # Same ranks, shards, thread count and gloo all-reduce: expected bit-identical; 1e-6 leaves room for nothing
    # but float noise (a training step moves weights by ~1e-3).
    assert difference <= 1e-6


def test_a_pod_killed_mid_run_fails_the_step_with_its_cause_in_bounded_time(zenml_client, pods_stack, two_pod_run):
    workdir, created_runs = pods_stack
    config = pods_config(workdir, "killed", epochs=200)
    raw = yaml.safe_load(config.read_text())
    raw["parameters"]["training"]["early_stopping_patience"] = None
    config.write_text(yaml.safe_dump(raw))
    earlier = set((workdir / "pods").iterdir())
    killed: dict[str, float] = {}

    def kill_pod_1_once_training() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            for pod_0 in set((workdir / "pods").glob("*-0")) - earlier:
                pod_1 = pod_0.with_name(pod_0.name[:-1] + "1")
                if "epoch 1:" in (pod_0 / "pod.log").read_text(errors="replace") and (pod_1 / "pid").is_file():
                    kill_tree(int((pod_1 / "pid").read_text()))  # the pod's launcher, torchrun and worker
                    killed["at"] = time.monotonic()
                    return
            time.sleep(0.5)

    killer = threading.Thread(target=kill_pod_1_once_training, daemon=True)
    killer.start()
    run, result, _ = run_pipeline(zenml_client, config, created_runs)
    ended = time.monotonic()
    killer.join(timeout=5)
    assert result.exit_code != 0 and "at" in killed, result.output
    assert run.status.value == "failed" and run.steps[TRAIN_COMMAND_STEP].status.value == "failed"
    assert "load_trained_model" not in run.steps or run.steps["load_trained_model"].status.value != "completed"
    message = run.steps[TRAIN_COMMAND_STEP].exception_info.message
    print(f"killed pod 1; step failed {ended - killed['at']:.1f} s later: {message[:400]}")
    assert message.startswith("node 0 of 2: worker (local rank 0) failed:")
    assert ended - killed["at"] < TIMEOUT_S + 60
    pods = set((workdir / "pods").iterdir()) - earlier
    assert pods and all(processes_mentioning(str(pod)) == [] for pod in pods)
