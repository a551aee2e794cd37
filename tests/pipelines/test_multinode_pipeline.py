"""The multi-node pipeline shape on the local stack: publish -> command step (one "pod") -> load -> evaluate.

The command step runs through the local_process step operator, so the same har_zenml.multinode_node entry the
Kubernetes pods run reads the job, loads model and data from their artifacts, trains under torchrun and uploads
the result. That run records its provenance (the pod's machine: 2 DDP processes) and `run.py --reproduce`
re-runs it through the same pipeline, compared within tolerance. The CLI refusals and the pod-variable parsing
are checked without running anything.
"""

import pytest
import yaml
from click.testing import CliRunner

from cli.multinode_command import main
from har_core.runtime.provenance import TrainingProvenance
from har_core.training.launcher import NodeSpec
from har_zenml.multinode_node import (
    MAIN_ADDRESS_VARIABLE,
    MAIN_PORT_VARIABLE,
    NODE_INDEX_VARIABLE,
    POD_COUNT_VARIABLE,
    node_from_environment,
)
from har_zenml.names import (
    EVALUATION_REPORT_ARTIFACT,
    FINE_TUNED_EVALUATION_STEP,
    PROVENANCE_METADATA_KEY,
    REPRODUCTION_METADATA_KEY,
    TRAIN_COMMAND_STEP,
    TRAINED_MODEL_ARTIFACT,
)
from tests.conftest import CPU_LOCK, PROJECT_ROOT
from tests.pipelines.test_training_pipeline import quickstart_config_in


@pytest.mark.slow
@pytest.mark.torchrun
def test_the_multinode_pipeline_yields_the_usual_trained_model_artifact_and_reproduces(zenml_client, tmp_path):
    config = yaml.safe_load(quickstart_config_in(tmp_path).read_text())
    config["parameters"]["nodes"] = 1
    config["parameters"]["data"]["synthetic"] = {"images_per_class": 8, "image_size": 64, "seed": 0}
    config["parameters"]["training"].update(
        epochs=1, batch_size=8, distributed={"strategy": "ddp", "nproc_per_node": 2, "backend": "gloo"}
    )
    config["steps"] = {
        TRAIN_COMMAND_STEP: {"step_operator": True},
        "load_trained_model": {"experiment_tracker": True},
    }
    path = tmp_path / "multinode.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["--config", str(path)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    run = zenml_client.get_pipeline("multinode_training_pipeline").last_run
    assert run.status.value == "completed"
    assert run.steps[TRAIN_COMMAND_STEP].status.value == "completed"
    model = run.steps["load_trained_model"].outputs[TRAINED_MODEL_ARTIFACT][0].load()
    assert len(model.labels) == 15
    report = run.steps[FINE_TUNED_EVALUATION_STEP].outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    assert report.num_images > 0
    job_uri = run.steps["publish_training_job"].run_metadata["job_uri"]
    assert job_uri.startswith(zenml_client.active_stack.artifact_store.path)

    recorded = TrainingProvenance.model_validate(run.model_version.run_metadata[PROVENANCE_METADATA_KEY])
    assert recorded == model.provenance and recorded.run == run.name and recorded.parameters["nodes"] == 1
    assert (recorded.machine.world_size, recorded.machine.strategy) == (2, "ddp") and recorded.machine.cpu_model
    assert recorded.lock.file == CPU_LOCK and "torch" in recorded.versions

    import run as run_cli

    reproduction = CliRunner().invoke(run_cli.main, ["--reproduce", run.name])
    assert reproduction.exit_code == 0, reproduction.output + repr(reproduction.exception)
    rerun = zenml_client.get_pipeline("multinode_training_pipeline").last_run
    assert rerun.id != run.id and rerun.steps[TRAIN_COMMAND_STEP].status.value == "completed"  # caching off
    assert "Standard: within tolerance (2 processes (ddp)" in reproduction.output
    assert "REPRODUCED within tolerance." in reproduction.output
    record = rerun.model_version.run_metadata[REPRODUCTION_METADATA_KEY]
    assert record["of_run"] == run.name and record["reproduced"] and record["standard"] == "tolerance"


@pytest.mark.parametrize(
    ("training", "pod_count", "message"),
    [
        ({}, 3, "parameters.nodes is 2 but step 'train_on_nodes' runs on pod_count 3 pods"),
        ({"resume_from": "latest"}, 2, "training.resume_from is not supported by the multi-node pipeline"),
        ({"distributed": {"strategy": "none"}}, 2, "the multi-node pipeline needs ddp or fsdp"),
    ],
)
def test_what_multinode_cannot_do_stops_before_any_run(zenml_client, tmp_path, training, pod_count, message):
    config = yaml.safe_load((PROJECT_ROOT / "configs" / "training_multinode.yaml").read_text())
    config["parameters"]["training"].update(training)
    config["steps"][TRAIN_COMMAND_STEP]["settings"]["step_operator.kubernetes"]["pod_count"] = pod_count
    path = tmp_path / "multinode.yaml"
    path.write_text(yaml.safe_dump(config))
    runs_before = zenml_client.list_pipeline_runs(size=1).total
    result = CliRunner().invoke(main, ["--config", str(path)])
    assert result.exit_code == 1 and message in result.output, result.output
    assert zenml_client.list_pipeline_runs(size=1).total == runs_before


def test_a_pod_reads_its_place_from_the_kubernetes_step_operator_variables():
    variables = {POD_COUNT_VARIABLE: "2", MAIN_ADDRESS_VARIABLE: "job-0.job.ns.svc", MAIN_PORT_VARIABLE: "29500"}
    assert node_from_environment({}) is None and node_from_environment({POD_COUNT_VARIABLE: "1"}) is None
    assert node_from_environment({**variables, NODE_INDEX_VARIABLE: "1"}) == NodeSpec(2, 1, "job-0.job.ns.svc", 29500)
    with pytest.raises(RuntimeError, match="JOB_COMPLETION_INDEX"):
        node_from_environment(variables)
