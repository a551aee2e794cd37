import numpy as np

from har_core.config import PromotionConfig
from har_core.evaluation.metrics import compute_report
from har_core.evaluation.promotion import (
    PRODUCTION_STAGE,
    STAGING_STAGE,
    decide,
    label_set_mismatch,
    no_deployable_format,
)
from har_core.training.run_facts import git_commit
from tests.conftest import PROJECT_ROOT

LABELS = ["a", "b"]


def report(correct: int, total: int = 10):
    y_true = np.zeros(total, dtype=int)
    y_pred = np.array([0] * correct + [1] * (total - correct))
    return compute_report(y_true, y_pred, LABELS, "test")


CONFIG = PromotionConfig(margin=0.05, min_metric=0.5)


def test_first_model_needs_the_floor():
    assert decide(report(6), None, CONFIG)[0] == PRODUCTION_STAGE
    stage, reason = decide(report(4), None, CONFIG)
    assert stage == STAGING_STAGE and "below the floor 0.5" in reason


def test_production_only_when_better_by_the_margin():
    assert decide(report(8), report(7), CONFIG, "3")[0] == PRODUCTION_STAGE  # +0.1 >= margin
    stage, reason = decide(report(7), report(7), CONFIG, "3")
    assert stage == STAGING_STAGE and "production version 3 (0.7000)" in reason
    assert decide(report(6), report(7), CONFIG, "3")[0] == STAGING_STAGE


def test_force_and_refusal():
    forced = PromotionConfig(margin=0.05, min_metric=0.9, force=True)
    stage, reason = decide(report(1), report(9), forced, "3")
    assert stage == PRODUCTION_STAGE and "forced" in reason
    refusal = label_set_mismatch(["a", "b"], ["a", "c"])
    assert "only in the candidate: ['b']" in refusal and "only in production: ['c']" in refusal
    assert label_set_mismatch(["a", "b"], ["b", "a"]) == "the production model orders its labels differently"
    assert label_set_mismatch(LABELS, LABELS) is None
    stage, reason = decide(report(9), None, CONFIG, "3", refusal)
    assert stage == STAGING_STAGE and "label sets differ" in reason


def test_a_version_without_a_deployable_format_stays_in_staging_even_when_forced():
    from har_core.runtime.manifest import FormatStatus

    failed = {
        "onnx": FormatStatus(format="onnx", directory="onnx", message="parity gate failed: top-1 agreement 0.9 < 0.99"),
        "tensorrt": FormatStatus(format="tensorrt", message="TensorRT is not installed"),
    }
    undeployable = no_deployable_format(failed)
    assert "onnx: parity gate failed: top-1 agreement 0.9 < 0.99" in undeployable
    assert "tensorrt: TensorRT is not installed" in undeployable
    forced = PromotionConfig(margin=0.05, min_metric=0.5, force=True)
    for config in (CONFIG, forced):
        stage, reason = decide(report(9), None, config, undeployable=undeployable)
        assert stage == STAGING_STAGE and reason.startswith("not deployable: no export format passed its parity gate")
    passed = {**failed, "onnx-int8": FormatStatus(format="onnx-int8", directory="x", deployable=True)}
    assert no_deployable_format(passed) is None
    assert decide(report(9), None, CONFIG, undeployable=no_deployable_format(passed))[0] == PRODUCTION_STAGE


def test_git_commit_and_data_version(tmp_path):
    commit = git_commit(PROJECT_ROOT)
    assert commit is None or len(commit.split("+")[0]) == 40
    assert git_commit(tmp_path) is None
    from har_core.data.dataset import DatasetManifest

    manifest = DatasetManifest(labels=LABELS, root="/x", train=[], val=[], test=[])
    assert manifest.version_label() == manifest.model_copy().version_label()
    assert manifest.version_label().startswith("sha256:")
    assert manifest.model_copy(update={"revision": "dvc:v1"}).version_label().startswith("dvc:v1 sha256:")
