"""The quick training pipeline on the `remote-store` stack: local orchestrator, S3 artifact store on a moto server,
MLflow on a real `mlflow server`; every artifact lands in the bucket and no step reads the writer's local paths."""

import os
from pathlib import Path

import boto3
import mlflow
import pytest
import yaml

from har_zenml.names import DATASET_ARTIFACT, FINE_TUNED_EVALUATION_STEP, TRAINING_RESULT_ARTIFACT
from stacks.register import load_stack_spec, register_stack
from stacks.servers import S3_CREDENTIALS, remote_store_servers
from tests.conftest import PROJECT_ROOT
from tests.pipelines.pipeline_runs import run_training, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def remote_run(zenml_client, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("remote-store")
    config = tiny_config(workdir, synthetic={"images_per_class": 6, "image_size": 32, "seed": 7})
    raw = yaml.safe_load(config.read_text())
    # ZenML fires start hooks after a step loaded its inputs: from the second step on, no local copy survives.
    raw["steps"]["load_base_model"] = {"start_hook_source": "tests.stacks.hooks.forget_local_data"}
    quickstart = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())["parameters"]
    raw["parameters"]["export"]["formats"] = quickstart["export"]["formats"]  # every format's files in the bucket
    config.write_text(yaml.safe_dump(raw))
    with remote_store_servers(workdir) as servers:
        saved = {key: os.environ.get(key) for key in [*servers, "HAR_TEST_SOURCE_DIR", "HAR_CLIP_DATA_CACHE"]}
        os.environ.update(servers)
        os.environ["HAR_TEST_SOURCE_DIR"] = str(workdir / "data" / "synthetic-7")
        os.environ["HAR_CLIP_DATA_CACHE"] = str(workdir / "unpacked")  # nothing unpacked here before this run
        run = None
        try:
            register_stack(load_stack_spec("remote-store"), activate=True)
            run, output = run_training(zenml_client, config, "--no-cache")
            s3 = boto3.client(
                "s3",
                endpoint_url=servers["HAR_S3_ENDPOINT_URL"],
                aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
            )
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=servers["HAR_S3_BUCKET"])
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
            yield run, output, keys, servers, workdir
        finally:
            zenml_client.activate_stack("local")
            if run is not None:  # its artifacts live in a bucket that goes away with the servers: forget them too
                if run.model_version is not None:
                    zenml_client.delete_model_version(run.model_version.id)
                zenml_client.delete_pipeline_run(run.id)
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def test_pipeline_completes_on_the_remote_store(remote_run):
    run, _, _, _, _ = remote_run
    assert run.status.value == "completed" and run.stack.name == "remote-store"


def test_every_artifact_is_in_the_bucket(remote_run):
    run, _, keys, servers, _ = remote_run
    bucket = f"s3://{servers['HAR_S3_BUCKET']}/"
    uris = [artifact.uri for step in run.steps.values() for outputs in step.outputs.values() for artifact in outputs]
    assert len(uris) >= 9 and all(uri.startswith(bucket) for uri in uris)
    for uri in uris:
        prefix = uri.removeprefix(bucket)
        assert any(key.startswith(prefix) for key in keys), uri
    dataset_uri = run.steps["load_data"].outputs[DATASET_ARTIFACT][0].uri.removeprefix(bucket)
    assert f"{dataset_uri}/images.tar" in keys and f"{dataset_uri}/manifest.json" in keys
    result = run.steps["train_model"].outputs[TRAINING_RESULT_ARTIFACT][0].load()
    assert result.best_checkpoint.startswith(bucket)
    assert any(key.startswith(result.best_checkpoint.removeprefix(bucket)) for key in keys)


def test_later_steps_got_the_images_from_the_bucket(remote_run):
    run, _, _, _, workdir = remote_run
    assert not (workdir / "data" / "synthetic-7").exists()  # deleted when the second step started
    manifest = run.steps["load_data"].outputs[DATASET_ARTIFACT][0].load()
    assert Path(manifest.root).parent == workdir / "unpacked" and len(list(Path(manifest.root).rglob("*.jpg"))) == 18


def test_mlflow_server_holds_the_run_with_artifacts_in_the_bucket(remote_run):
    run, output, keys, servers, _ = remote_run
    evaluation = run.steps[FINE_TUNED_EVALUATION_STEP]
    assert evaluation.run_metadata["mlflow_tracking_uri"] == servers["HAR_MLFLOW_TRACKING_URI"]
    client = mlflow.MlflowClient(tracking_uri=servers["HAR_MLFLOW_TRACKING_URI"])
    mlflow_run = client.get_run(evaluation.run_metadata["mlflow_run_id"])
    assert f"{FINE_TUNED_EVALUATION_STEP}/accuracy" in mlflow_run.data.metrics
    artifacts = {item.path for item in client.list_artifacts(mlflow_run.info.run_id, FINE_TUNED_EVALUATION_STEP)}
    assert f"{FINE_TUNED_EVALUATION_STEP}/confusion_matrix.png" in artifacts
    assert any(key.startswith("mlflow/") and key.endswith("confusion_matrix.png") for key in keys)
    assert f"MLflow: {servers['HAR_MLFLOW_TRACKING_URI']}/#/experiments/" in output
