"""The multi-node pipeline shape on the local stack: publish -> command step (one "pod") -> load -> evaluate.

The command step runs through the local_process step operator, so the same steps.multinode_node entry the
Kubernetes pods run downloads the job from the artifact store, trains under torchrun and uploads the result.
"""

import pytest
import yaml

from har_core.constants import EVALUATION_REPORT_ARTIFACT, FINE_TUNED_EVALUATION_STEP, TRAINED_MODEL_ARTIFACT
from pipelines.multinode_training import TRAIN_COMMAND_STEP, main
from tests.pipelines.test_training_pipeline import quickstart_config_in

pytestmark = pytest.mark.slow


def test_the_multinode_pipeline_yields_the_usual_trained_model_artifact(zenml_client, tmp_path):
    from click.testing import CliRunner

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
