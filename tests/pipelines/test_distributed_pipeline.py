"""The training pipeline with DDP on 2 processes, through the local_process step operator, in a clean store."""

import os
from pathlib import Path

import mlflow
import pytest
import yaml
from click.testing import CliRunner

from har_core.training.checkpoint import RESUME_DIR
from har_zenml.names import TRAINED_MODEL_ARTIFACT, TRAINING_RESULT_ARTIFACT
from tests.har_core.training.distributed_helpers import processes_mentioning
from tests.pipelines.test_training_pipeline import quickstart_config_in

pytestmark = [pytest.mark.slow, pytest.mark.torchrun]


def ddp_config(directory, **training):
    path = quickstart_config_in(directory)
    config = yaml.safe_load(path.read_text())
    config["parameters"]["data"]["synthetic"] = {"images_per_class": 8, "image_size": 64, "seed": 0}
    ddp = {"strategy": "ddp", "nproc_per_node": 2, "backend": "gloo"}
    config["parameters"]["training"].update({"epochs": 2, "batch_size": 8, "distributed": ddp} | training)
    path.write_text(yaml.safe_dump(config))
    return path


def run_cli(path):
    import run

    return CliRunner().invoke(run.main, ["--pipeline", "training", "--config", str(path), "--no-cache"])


@pytest.fixture(scope="module")
def ddp_run(zenml_client, tmp_path_factory):
    result = run_cli(ddp_config(tmp_path_factory.mktemp("ddp-pipeline")))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return zenml_client.get_pipeline("training_pipeline").last_run


def test_the_ddp_pipeline_completes_with_the_train_step_in_its_own_process(ddp_run):
    assert ddp_run.status.value == "completed"
    train_step = ddp_run.steps["train_model"]
    assert train_step.config.step_operator in (True, "local_process")
    pid = train_step.run_metadata["train_process_pid"]
    assert isinstance(pid, int) and pid != os.getpid()  # the local orchestrator runs in this test's process
    assert train_step.run_metadata["world_size"] == 2
    result = train_step.outputs[TRAINING_RESULT_ARTIFACT][0].load()
    assert result.strategy == "ddp" and result.world_size == 2 and len(result.history) == 2
    model = train_step.outputs[TRAINED_MODEL_ARTIFACT][0].load()
    assert model.clip.logit_scale.dim() == 0 and len(model.labels) == 15


def test_mlflow_holds_each_epoch_metric_once(ddp_run):
    train_step = ddp_run.steps["train_model"]
    client = mlflow.MlflowClient(tracking_uri=str(train_step.run_metadata["mlflow_tracking_uri"]))
    result = train_step.outputs[TRAINING_RESULT_ARTIFACT][0].load()
    for name in ("val_accuracy", "train_loss"):
        history = client.get_metric_history(train_step.run_metadata["mlflow_run_id"], name)
        assert sorted(point.step for point in history) == [1, 2]
        assert [point.value for point in sorted(history, key=lambda p: p.step)] == pytest.approx(
            [getattr(epoch, name) for epoch in result.history]
        )


def test_a_failing_worker_fails_the_train_step_with_its_exception(zenml_client, ddp_run, tmp_path):
    # A DDP checkpoint (full weights) cannot resume an FSDP run: nothing checks that before the launch, so each
    # worker's Trainer raises when it opens the checkpoint.
    training = ddp_run.steps["train_model"].config.parameters["training"]
    training = training if isinstance(training, dict) else training.model_dump()
    checkpoint = max(Path(training["output_dir"]).glob(f"*/{RESUME_DIR}/step-*"))
    fsdp = {"strategy": "fsdp", "nproc_per_node": 2, "backend": "gloo"}
    result = run_cli(ddp_config(tmp_path, distributed=fsdp, resume_from=str(checkpoint)))
    assert result.exit_code != 0
    run = zenml_client.get_pipeline("training_pipeline").last_run
    assert run.id != ddp_run.id and run.status.value == "failed"
    step = run.steps["train_model"]
    assert step.status.value == "failed"
    assert "cannot resume a 'fsdp' run" in step.exception_info.message
    assert "worker (local rank" in step.exception_info.message
    assert processes_mentioning("har_core.training.worker") == []
