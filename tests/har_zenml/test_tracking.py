"""Both experiment trackers of the local stack receive params, per-epoch metrics, plots and reports; each is
read back with its own library's reader (MlflowClient; W&B's record format for the offline run directory)."""

from pathlib import Path

import mlflow
import pytest

from cli.tracker_links import tracker_pointers
from har_zenml.names import EVALUATION_REPORT_ARTIFACT, FINE_TUNED_EVALUATION_STEP, TRAINING_RESULT_ARTIFACT
from tests.har_zenml.wandb_offline import read_offline_run
from tests.pipelines.pipeline_runs import run_training, tiny_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tracked_run(zenml_client, tmp_path_factory):
    directory = tmp_path_factory.mktemp("tracking")
    config = tiny_config(directory)
    config.write_text(config.read_text().replace("epochs: 1", "epochs: 2"))
    run, output = run_training(zenml_client, config, "--no-cache")
    assert run.status.value == "completed"
    return run, output


def test_the_stack_runs_both_trackers_in_each_tracked_step(tracked_run):
    run, _ = tracked_run
    for name in ("train_model", FINE_TUNED_EVALUATION_STEP):
        metadata = run.steps[name].run_metadata
        assert "mlflow_run_id" in metadata and metadata["wandb_mode"] == "offline", name


def test_mlflow_holds_params_epochs_plots_and_report(tracked_run):
    run, _ = tracked_run
    train = run.steps["train_model"]
    client = mlflow.MlflowClient(tracking_uri=str(train.run_metadata["mlflow_tracking_uri"]))
    result = train.outputs[TRAINING_RESULT_ARTIFACT][0].load()
    history = client.get_metric_history(train.run_metadata["mlflow_run_id"], "val_accuracy")
    assert [(p.step, p.value) for p in sorted(history, key=lambda p: p.step)] == [
        (epoch.epoch, pytest.approx(epoch.val_accuracy)) for epoch in result.history
    ]
    assert client.get_run(train.run_metadata["mlflow_run_id"]).data.params["epochs"] == "2"
    evaluation = run.steps[FINE_TUNED_EVALUATION_STEP]
    report = evaluation.outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    eval_run = client.get_run(evaluation.run_metadata["mlflow_run_id"])
    assert eval_run.data.metrics[f"{FINE_TUNED_EVALUATION_STEP}/macro_f1"] == pytest.approx(report.macro_f1)
    files = {item.path for item in client.list_artifacts(eval_run.info.run_id, FINE_TUNED_EVALUATION_STEP)}
    expected = {"confusion_matrix.png", "per_class.png", "per_class_table.json", "summary.md", "report.json"}
    assert {f"{FINE_TUNED_EVALUATION_STEP}/{name}" for name in expected} <= files


def test_wandb_offline_run_holds_config_history_summary_and_files(tracked_run):
    run, _ = tracked_run
    train = run.steps["train_model"]
    result = train.outputs[TRAINING_RESULT_ARTIFACT][0].load()
    logged = read_offline_run(Path(train.run_metadata["wandb_run_dir"]))
    assert logged.config["learning_rate"] == pytest.approx(2e-3) and logged.config["epochs"] == 2
    epochs = [row for row in logged.history if "val_accuracy" in row]
    assert [(row["_step"], row["val_accuracy"]) for row in epochs] == [
        (epoch.epoch, pytest.approx(epoch.val_accuracy)) for epoch in result.history
    ]
    assert logged.summary["best_val_accuracy"] == pytest.approx(result.best_val_accuracy)

    evaluation = run.steps[FINE_TUNED_EVALUATION_STEP]
    report = evaluation.outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    run_dir = Path(evaluation.run_metadata["wandb_run_dir"])
    logged = read_offline_run(run_dir)
    assert logged.summary[f"{FINE_TUNED_EVALUATION_STEP}/accuracy"] == pytest.approx(report.accuracy)
    media = {key: value for row in logged.history for key, value in row.items()}
    for plot in ("confusion_matrix", "per_class"):
        assert media[f"{FINE_TUNED_EVALUATION_STEP}/{plot}/_type"] == "image-file"
        assert (run_dir / "files" / media[f"{FINE_TUNED_EVALUATION_STEP}/{plot}/path"]).is_file()
    assert media[f"{FINE_TUNED_EVALUATION_STEP}/per_class_table/nrows"] == len(report.labels)
    saved = run_dir / "files" / FINE_TUNED_EVALUATION_STEP / "report.json"
    assert report.model_validate_json(saved.read_text()) == report


def test_where_to_look_names_each_tracker(tracked_run):
    run, output = tracked_run
    lines = tracker_pointers(run)
    assert any(line.startswith("MLflow: mlflow ui --backend-store-uri sqlite:///") for line in lines)
    assert any(line.startswith("W&B (offline") and "wandb sync" in line for line in lines)
    assert all(line in output for line in lines)
