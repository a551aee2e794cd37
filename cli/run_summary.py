"""What the CLI prints after a training run: results, where the model is, where to look; or why a step failed.

Results are read back from the run's artifacts in the ZenML store, so a fully cached run prints the same summary
as the run that computed them.
"""

from __future__ import annotations

from typing import Any

from zenml.client import Client
from zenml.models import PipelineRunResponse, StepRunResponse

from har_zenml.names import (
    EVALUATION_REPORT_ARTIFACT,
    FINE_TUNED_EVALUATION_STEP,
    LOAD_DATA_STEP,
    PROMOTE_STEP,
    PROMOTION_DECISION_ARTIFACT,
    TRAIN_STEP,
    TRAINED_MODEL_ARTIFACT,
    TRAINING_RESULT_ARTIFACT,
    ZERO_SHOT_EVALUATION_STEP,
)

# Steps that run on every pipeline run by design: the data check re-reads the images, promotion compares with
# whatever is in production now.
NEVER_CACHED_STEPS = (LOAD_DATA_STEP, PROMOTE_STEP)


def summary_lines(run: PipelineRunResponse) -> list[str]:
    """The end-of-run summary: metrics, best epoch, early stop, model version, checkpoint, and tracker pointers."""
    steps = run.steps
    lines = [f"Pipeline run {run.name!r}: {run.status.value}."]
    if _all_cached(steps):
        lines.append(
            f"Every step but {' and '.join(name for name in NEVER_CACHED_STEPS if name in steps)} was cached: "
            "nothing was retrained; these are the results of the cached steps."
        )
    for title, name in (("zero-shot ", ZERO_SHOT_EVALUATION_STEP), ("fine-tuned", FINE_TUNED_EVALUATION_STEP)):
        report = _output(steps, name, EVALUATION_REPORT_ARTIFACT)
        if report is not None:
            lines.append(
                f"  {title}  {report.split} accuracy {report.accuracy:.3f}  macro-F1 {report.macro_f1:.3f}  "
                f"({report.num_images} images, {len(report.labels)} labels)"
            )
    calibrated = _output(steps, FINE_TUNED_EVALUATION_STEP, EVALUATION_REPORT_ARTIFACT)
    if calibrated is not None and calibrated.calibration is not None and calibrated.calibration.reliability_after:
        lines.append(f"  calibrated  {calibration_line(calibrated.calibration.metrics, calibrated.split)}")
    result = _output(steps, TRAIN_STEP, TRAINING_RESULT_ARTIFACT)
    if result is not None:
        epochs = len(result.history)
        stop = f"stopped early after epoch {epochs}" if result.stopped_early else f"ran all {epochs} epochs"
        lines.append(
            f"  training    best epoch {result.best_epoch} (val accuracy {result.best_val_accuracy:.3f}), {stop}"
        )
        lines.append(f"Checkpoint of the best epoch: {result.best_checkpoint}")
    if run.model_version is not None:
        version = run.model_version
        lines.append(
            f"Model version: {version.model.name} version {version.name} "
            f"(zenml model version list --model {version.model.name})"
        )
    decision = _output(steps, PROMOTE_STEP, PROMOTION_DECISION_ARTIFACT)
    if decision is not None:
        lines.append(f"Promotion: {decision.stage} ({decision.reason})")
    if TRAIN_STEP in steps and TRAINED_MODEL_ARTIFACT in steps[TRAIN_STEP].outputs:
        lines.append(f"Trained model artifact: {steps[TRAIN_STEP].outputs[TRAINED_MODEL_ARTIFACT][0].uri}")
    lines.append("Where to look:")
    lines += [f"  {line}" for line in tracker_lines(run)]
    return lines


def calibration_line(figures: dict[str, float], split: str) -> str:
    """Temperature, ECE before and after, and the share answered at the abstention threshold (docs/confidence.md)."""
    answered = f"answers {figures['coverage']:.1%} (target {figures['target_coverage']:.0%})"
    if "selective_accuracy" in figures:
        answered += f", accuracy {figures['selective_accuracy']:.3f} on those"
    return (
        f"temperature {figures['temperature']:.3f}, {split} ECE {figures['ece_before']:.3f} -> "
        f'{figures["ece_after"]:.3f}; {answered}, "no action" below top-1 {figures["abstain_below"]:.3f}'
    )


def tracker_lines(run: PipelineRunResponse) -> list[str]:
    """One pointer per place that holds this run's records: the ZenML dashboard, then each experiment tracker.

    Cached steps point at the tracker runs of the steps that computed their outputs.
    """
    from cli.tracker_links import pointers_from_metadata

    lines = [f"ZenML: zenml login --local, then runs > {run.name} (stop it with zenml logout --local)"]
    return lines + pointers_from_metadata(_origin(step).run_metadata for step in run.steps.values())


def failure_lines(run: PipelineRunResponse) -> list[str]:
    """Why a run failed, in a few lines: each failed step's exception and where its full log is."""
    lines = [f"Pipeline run {run.name!r} failed."]
    for name, step in run.steps.items():
        if step.status.value != "failed":
            continue
        info = step.exception_info
        kind = (info.source or "").rsplit(".", 1)[-1] if info else ""
        message = (info.message if info else None) or "no exception recorded"
        lines.append(f"Step {name} failed: {kind + ': ' if kind else ''}{message}")
        logs = [entry.uri for entry in step.log_collection or () if getattr(entry, "source", None) == "step"]
        if logs:
            lines.append(f"Full log with the traceback: {logs[0]}")
    lines.append(
        f"The run is recorded in ZenML as {run.name} (zenml pipeline runs list; the dashboard shows its logs)."
    )
    return lines


def latest_run_id(pipeline_name: str) -> Any:
    """The id of the newest run of `pipeline_name`, None before its first run."""
    runs = Client().list_pipeline_runs(pipeline=pipeline_name, sort_by="desc:created", size=1)
    return runs.items[0].id if runs.items else None


def run_since(pipeline_name: str, previous_id: Any) -> PipelineRunResponse | None:
    """The newest run of `pipeline_name` if it is not `previous_id` (the run this CLI call started, if any)."""
    newest = latest_run_id(pipeline_name)
    return None if newest is None or newest == previous_id else Client().get_pipeline_run(newest)


def _all_cached(steps: dict[str, StepRunResponse]) -> bool:
    others = [step for name, step in steps.items() if name not in NEVER_CACHED_STEPS]
    return bool(others) and all(step.status.value == "cached" for step in others)


def _origin(step: StepRunResponse) -> StepRunResponse:
    """The step run that computed a cached step's outputs (and holds its tracker metadata)."""
    if step.status.value == "cached" and step.original_step_run_id is not None:
        return Client().get_run_step(step.original_step_run_id)
    return step


def _output(steps: dict[str, StepRunResponse], step_name: str, artifact_name: str) -> Any:
    step = steps.get(step_name)
    if step is None or artifact_name not in step.outputs:
        return None
    return step.outputs[artifact_name][0].load()
