"""`run.py --command benchmark`: benchmark the exports of an existing model version, without retraining.

The version's own exports (through `har_zenml.model_exports`, the one version+format -> export lookup) are measured on
the version's own evaluation split (its `dataset_manifest` artifact, the split its evaluation report names), and the
table is printed. With `--min-accuracy`, a format whose accuracy on that split is below the floor (or could not be
measured) makes the command fail with exit status 1, for CI. Nothing is written to the ZenML store.
"""

from __future__ import annotations

import click

from har_core.config import BenchmarkConfig, EvaluationConfig


def run_benchmark_command(model_version: str, export_format: str | None, min_accuracy: float | None) -> None:
    from har_core.export.benchmark import accuracy_floor_failures, benchmark_bundle, labelled_images
    from har_zenml.model_exports import ModelExportNotFoundError, find_model_version, load_version_exports
    from har_zenml.names import DATASET_ARTIFACT, EVALUATION_REPORT_ARTIFACT, ZENML_MODEL_NAME

    try:
        version = find_model_version(model_version)
        bundle = load_version_exports(version)
    except ModelExportNotFoundError as error:
        raise click.ClickException(str(error)) from error
    if export_format is not None and export_format not in bundle.formats:
        raise click.ClickException(
            f"{ZENML_MODEL_NAME} version {version.number} has no {export_format} export: it was not requested at "
            f"export (exported: {', '.join(sorted(bundle.formats))})."
        )
    dataset = version.get_artifact(DATASET_ARTIFACT)
    if dataset is None:
        raise click.ClickException(
            f"{ZENML_MODEL_NAME} version {version.number} has no {DATASET_ARTIFACT} artifact, so there is no "
            "evaluation split to measure accuracy on."
        )
    report = version.get_artifact(EVALUATION_REPORT_ARTIFACT)
    split = report.load().split if report is not None else EvaluationConfig().split
    images = labelled_images(dataset.load(), split)
    click.echo(f"Benchmarking {ZENML_MODEL_NAME} version {version.number} on {len(images)} {split} images…")
    formats = [export_format] if export_format else None
    table = benchmark_bundle(bundle, BenchmarkConfig(), images, formats, split=split)
    click.echo("\n" + table.markdown())
    if min_accuracy is not None:
        failures = accuracy_floor_failures(table, min_accuracy)
        if failures:
            raise click.ClickException(f"Below the accuracy floor {min_accuracy}: " + "; ".join(failures))
        click.echo(f"Every benchmarked format reaches the accuracy floor {min_accuracy}.")
