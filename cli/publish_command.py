"""Publish the model version in a stage (default: production) to the Hugging Face Hub.

    python -m cli.publish_command --repo-id me/har-clip --out .cache/har-clip/hub/har-clip
    python -m cli.publish_command --repo-id me/har-clip --stage staging --public

Reads the version's trained model, its fine-tuned evaluation report and the run's training config from the Model
Control Plane; uploads with HF_TOKEN, or writes the folder locally and says so when there is no token.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from har_core.evaluation.promotion import PRODUCTION_STAGE
from har_zenml.names import (
    EVALUATION_REPORT_ARTIFACT,
    FINE_TUNED_EVALUATION_STEP,
    TRAINED_MODEL_ARTIFACT,
    ZENML_MODEL_NAME,
)


def publish_model_version(model_name: str, stage: str, repo_id: str, out: Path, private: bool):
    from zenml.client import Client

    from har_core.export.publish import upload_folder, write_hub_folder

    client = Client()
    version = client.get_model_version(model_name, stage)
    artifact = version.get_artifact(TRAINED_MODEL_ARTIFACT)
    model = artifact.load()
    run = client.get_pipeline_run(artifact.producer_pipeline_run_id)
    report = run.steps[FINE_TUNED_EVALUATION_STEP].outputs[EVALUATION_REPORT_ARTIFACT][0].load()
    parameters = run.config.parameters or {}
    training = {**(parameters.get("training") or {}), "backbone": model.backbone_name, "model_version": version.number}
    data = parameters.get("data") or {}
    dataset_name = data.get("hf_dataset") if data.get("source", "huggingface") == "huggingface" else data.get("source")
    folder = write_hub_folder(model, report, training, out, repo_id, str(dataset_name))
    return upload_folder(folder, repo_id, private=private)


@click.command()
@click.option("--repo-id", required=True, help="Hub repository, e.g. me/har-clip.")
@click.option("--stage", default=PRODUCTION_STAGE, show_default=True, help="Model Control Plane stage to publish.")
@click.option("--model-name", default=ZENML_MODEL_NAME, show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path(".cache/har-clip/hub"))
@click.option("--public", is_flag=True, help="Create a public repository (default: private).")
def main(repo_id: str, stage: str, model_name: str, out: Path, public: bool) -> None:
    """Write a save_pretrained folder + model card for a model version and upload it when HF_TOKEN is set."""
    logging.basicConfig(level=logging.INFO)
    result = publish_model_version(model_name, stage, repo_id, out / repo_id.replace("/", "__"), not public)
    click.echo(result.message if not result.uploaded else f"Uploaded {result.folder} to {result.url}")


if __name__ == "__main__":
    main()
