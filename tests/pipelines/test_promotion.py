"""Promotion through the Model Control Plane with real, tiny pipeline runs in the session's clean store.

Runs share one model (`har_clip_promotion_test`) and happen in order: a first model above the floor becomes
production; a worse one stays in staging and leaves production alone; a better one is promoted and the first is
archived; a model over another label set is refused with the reason; a forced one whose only format failed its
parity gate stays in staging.
"""

from pathlib import Path

import pytest
import yaml

from har_core.evaluation.promotion import ARCHIVED_STAGE, PRODUCTION_STAGE, STAGING_STAGE
from har_zenml.names import (
    BENCHMARK_ARTIFACT,
    EVALUATION_REPORT_ARTIFACT,
    EXPORTS_ARTIFACT,
    FINE_TUNED_EVALUATION_STEP,
    PROMOTE_STEP,
    PROMOTION_DECISION_ARTIFACT,
)
from tests.pipelines.test_training_pipeline import run_cli

pytestmark = pytest.mark.slow

MODEL_NAME = "har_clip_promotion_test"


def tiny_config(
    directory: Path, name: str, *, epochs: int, learning_rate: float, labels=None, force=False, impossible_gate=False
) -> Path:
    """A run config small enough for a few seconds of training: 32 px images, a one-layer CLIP, ONNX only.
    `impossible_gate`: ONNX held to thresholds no export meets (identical logits), so no format is deployable."""
    data = {
        "source": "synthetic",
        "cache_dir": str(directory / "data"),
        "synthetic": {"images_per_class": 8, "image_size": 32, "seed": 0},
    }
    if labels:
        data["labels"] = list(labels)
    config = {
        "model": {"name": MODEL_NAME, "description": "promotion test"},
        "parameters": {
            "data": data,
            "classifier": {
                "cache_dir": str(directory / "backbones"),
                "tiny_backbone": {
                    "image_size": 32,
                    "patch_size": 8,
                    "hidden_size": 32,
                    "num_layers": 1,
                    "num_heads": 2,
                    "projection_dim": 32,
                    "seed": 0,
                },
            },
            "training": {
                "epochs": epochs,
                "batch_size": 32,
                "learning_rate": learning_rate,
                "weight_decay": 0.0,
                "augmentation": "none",
                "early_stopping_patience": None,
                "num_workers": 0,
                "device": "cpu",
                "output_dir": str(directory / "checkpoints"),
            },
            "evaluation": {"split": "test", "batch_size": 64, "device": "cpu", "num_workers": 0},
            "export": {
                "formats": ["onnx"],
                "text_tower": False,
                "parity_images": 16,
                "device": "cpu",
                "output_dir": str(directory / "exports"),
            },
            "benchmark": {
                "batch_size": 2,
                "warmup": 0,
                "latency_iterations": 2,
                "throughput_iterations": 1,
                "device": "cpu",
                "threads": 1,
            },
            "promotion": {"metric": "accuracy", "margin": 0.05, "min_metric": 0.1, "device": "cpu", "force": force},
        },
    }
    if impossible_gate:
        gate = {"min_top1_agreement": 1.0, "max_abs_logit_diff": 1e-9, "min_embedding_cosine": 1.0}
        config["parameters"]["export"]["gates"] = {"onnx": gate}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def decision_of(run):
    return run.steps[PROMOTE_STEP].outputs[PROMOTION_DECISION_ARTIFACT][0].load()


def stages(client) -> dict[str, str | None]:
    versions = client.list_model_versions(MODEL_NAME, size=50)
    return {str(v.number): (getattr(v.stage, "value", v.stage) if v.stage else None) for v in versions}


@pytest.fixture(scope="module")
def runs(zenml_client, tmp_path_factory):
    """Four runs in order, with the stages after each."""
    directory = tmp_path_factory.mktemp("promotion")
    results = {}
    plan = [
        ("first", {"epochs": 2, "learning_rate": 3e-3}),
        ("worse", {"epochs": 1, "learning_rate": 1e-9}),
        ("better", {"epochs": 30, "learning_rate": 5e-3}),
        ("other_labels", {"epochs": 1, "learning_rate": 1e-3, "labels": ["running", "sleeping", "texting"]}),
        ("undeployable", {"epochs": 30, "learning_rate": 5e-3, "force": True, "impossible_gate": True}),
    ]
    for name, options in plan:
        run, _ = run_cli(zenml_client, "--config", str(tiny_config(directory, name, **options)), "--no-cache")
        results[name] = (run, stages(zenml_client))
    return results


def test_first_model_above_the_floor_goes_to_production(runs):
    run, after = runs["first"]
    decision = decision_of(run)
    assert decision.stage == PRODUCTION_STAGE and "first model" in decision.reason
    assert after == {str(run.model_version.number): PRODUCTION_STAGE}
    assert decision.git_commit and decision.data_version and not decision.forced


def test_a_worse_run_leaves_production_unchanged(runs):
    first, _ = runs["first"]
    run, after = runs["worse"]
    decision = decision_of(run)
    print(decision.reason)
    assert decision.stage == STAGING_STAGE
    assert "does not beat production" in decision.reason or "below the floor" in decision.reason
    assert decision.production_version == str(first.model_version.number)
    assert after[str(first.model_version.number)] == PRODUCTION_STAGE
    assert after[str(run.model_version.number)] == STAGING_STAGE


def test_both_models_are_scored_on_the_candidates_test_split(runs):
    run, _ = runs["worse"]
    decision = decision_of(run)
    report = run.steps[FINE_TUNED_EVALUATION_STEP].outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    first_report = runs["first"][0].steps[FINE_TUNED_EVALUATION_STEP].outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    assert decision.test_images == report.num_images
    assert decision.candidate_score == pytest.approx(report.accuracy)
    assert decision.production_score == pytest.approx(first_report.accuracy)  # same split seed: same images


def test_a_better_run_is_promoted_and_the_previous_archived(runs):
    first, _ = runs["first"]
    run, after = runs["better"]
    decision = decision_of(run)
    print(decision.reason)
    assert decision.stage == PRODUCTION_STAGE and "beats production" in decision.reason
    assert after[str(run.model_version.number)] == PRODUCTION_STAGE
    assert after[str(first.model_version.number)] == ARCHIVED_STAGE


def test_another_label_set_is_refused_with_the_reason(runs):
    better, _ = runs["better"]
    run, after = runs["other_labels"]
    decision = decision_of(run)
    assert decision.stage == STAGING_STAGE and "label sets differ" in decision.reason
    assert after[str(better.model_version.number)] == PRODUCTION_STAGE


def test_a_version_without_a_deployable_format_stays_in_staging_even_when_forced(zenml_client, runs):
    better, _ = runs["better"]
    run, after = runs["undeployable"]
    decision = decision_of(run)
    print(decision.reason)
    assert decision.stage == STAGING_STAGE and decision.forced
    assert decision.reason.startswith("not deployable: no export format passed its parity gate")
    assert "onnx: parity gate failed" in decision.reason
    assert after[str(run.model_version.number)] == STAGING_STAGE
    assert after[str(better.model_version.number)] == PRODUCTION_STAGE
    metadata = zenml_client.get_model_version(MODEL_NAME, run.model_version.number).run_metadata
    assert metadata["deployable_formats"] == [] and metadata["promotion"]["stage"] == STAGING_STAGE


def test_the_model_version_carries_metrics_exports_benchmark_and_decision(zenml_client, runs):
    run, _ = runs["better"]
    version = zenml_client.get_model_version(MODEL_NAME, run.model_version.number)
    metadata = version.run_metadata
    assert metadata["promotion"]["stage"] == PRODUCTION_STAGE and metadata["promotion"]["git_commit"]
    assert metadata["promotion"]["data_version"] and "onnx/p50_ms" in metadata["benchmark"]
    assert metadata["deployable_formats"] == ["onnx"] and metadata["test_metrics"]["accuracy"] > 0
    bundle = version.get_artifact(EXPORTS_ARTIFACT).load()
    assert bundle.deployable_formats() == ["onnx"] and bundle.manifest("onnx").parity.passed
    assert bundle.manifest("onnx").source.model_version == str(run.model_version.number)
    assert version.get_artifact(BENCHMARK_ARTIFACT).load().rows[0].p50_ms > 0


def test_the_production_model_publishes_locally_without_a_token(zenml_client, runs, tmp_path, monkeypatch):
    from huggingface_hub import ModelCard

    from cli.publish_command import publish_model_version
    from har_core.export.publish import load_hub_folder

    monkeypatch.delenv("HF_TOKEN", raising=False)
    result = publish_model_version(MODEL_NAME, PRODUCTION_STAGE, "me/har-clip", tmp_path / "hub", private=True)
    assert not result.uploaded and "nothing was uploaded" in result.message
    run, _ = runs["better"]
    report = run.steps[FINE_TUNED_EVALUATION_STEP].outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    card = ModelCard.load(tmp_path / "hub" / "README.md")
    assert {r.metric_name: r.metric_value for r in card.data.eval_results} == pytest.approx(report.headline_metrics())
    assert load_hub_folder(tmp_path / "hub").labels == report.labels
