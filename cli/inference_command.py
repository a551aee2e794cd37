"""`run.py --pipeline inference`: check the config, run the pipeline, export the predictions as CSV, print the
summary (label counts, unreadable files, throughput, and how much of the wall time was ZenML's start-up)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from har_core.inference.batch import PredictionSummary
from har_core.inference.table import PredictionsTable
from har_zenml.run_config import RunConfigError, check_zenml_run_settings, load_inference_run_config

LABELS_SHOWN = 15


def run_inference(config_path: Path, no_cache: bool, project_root: Path) -> None:
    try:
        parameters = load_inference_run_config(config_path)
        check_zenml_run_settings(config_path)
    except RunConfigError as error:
        raise click.ClickException(str(error)) from error
    source = parameters.inference.input
    if source.source == "folder" and not (project_root / source.path).is_dir():
        raise click.ClickException(f"input.path {source.path!r} is not a folder (relative paths mean the project's).")

    from zenml.client import Client

    from cli.run_summary import failure_lines, latest_run_id, run_since
    from har_zenml.names import PREDICT_FILES_STEP, PREDICTION_SUMMARY_ARTIFACT, PREDICTIONS_ARTIFACT
    from pipelines.inference import inference_pipeline

    previous_run = latest_run_id(inference_pipeline.name)
    started = time.perf_counter()
    try:
        inference_pipeline.with_options(config_path=str(config_path), enable_cache=False if no_cache else None)()
    except Exception as error:  # a step failed: its cause in a few lines, the traceback stays in ZenML's logs
        failed = run_since(inference_pipeline.name, previous_run)
        if failed is None:
            raise
        raise click.ClickException("\n".join(failure_lines(failed))) from error
    wall_s = time.perf_counter() - started
    run = Client().get_pipeline_run(run_since(inference_pipeline.name, previous_run).id)
    step = run.steps[PREDICT_FILES_STEP]
    table = step.outputs[PREDICTIONS_ARTIFACT][0].load()  # parts (now) or one DataFrame (versions stored before)
    summary: PredictionSummary = step.outputs[PREDICTION_SUMMARY_ARTIFACT][0].load()
    output_dir = parameters.inference.output_dir
    csv = (output_dir if output_dir.is_absolute() else project_root / output_dir) / f"{run.name}.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(table, PredictionsTable):
        from zenml.io import fileio

        table.write_csv(csv, opener=fileio.open)  # a part at a time
    else:
        table.to_csv(csv, index=False)
    click.echo("\n" + "\n".join(summary_lines(run.name, summary, wall_s, csv)))


def summary_lines(run_name: str, summary: PredictionSummary, wall_s: float, csv: Path) -> list[str]:
    """The end-of-run summary: what was scored with which model, how fast, the label counts, what was unreadable."""
    lines = [
        f"Inference run {run_name!r}: {summary.images} images and {summary.video_frames} frames of {summary.videos} "
        f"video(s) from {summary.source}, scored by model version {summary.model_version} ({summary.format}).",
        f"  throughput  {summary.images_per_s:.1f} img/s in the scoring step ({summary.scoring_s:.1f} s); the run "
        f"took {wall_s:.1f} s, {max(wall_s - summary.scoring_s, 0):.1f} s of it ZenML start-up, model load and "
        "artifact storage",
        "  top-1 label counts:",
    ]
    counts = list(summary.label_counts.items())
    lines += [f"    {label:<24} {count}" for label, count in counts[:LABELS_SHOWN]]
    if len(counts) > LABELS_SHOWN:
        lines.append(f"    … and {len(counts) - LABELS_SHOWN} more labels")
    if summary.unreadable:
        lines.append(f"  {len(summary.unreadable)} unreadable file(s), skipped (on_error: skip):")
        lines += [f"    {item.file}: {item.error}" for item in summary.unreadable[:20]]
        if len(summary.unreadable) > 20:
            lines.append(f"    … {len(summary.unreadable) - 20} more: the `prediction_summary` artifact lists all")
    lines.append(f"Predictions: artifact `predictions` (parquet) of run {run_name!r}; CSV: {csv}")
    return lines
