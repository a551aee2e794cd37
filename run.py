"""Command-line entry point: run a har-clip pipeline on the active ZenML stack."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIGS = {"training": PROJECT_ROOT / "configs" / "training.yaml"}

EXAMPLES = """
\b
Examples:
  python run.py --pipeline training --config configs/quickstart.yaml   # offline, tiny CLIP, synthetic images
  python run.py --pipeline training                                    # configs/training.yaml (needs the HF Hub)
  python run.py --pipeline training --config configs/quickstart.yaml --no-cache
\b
Stacks: `python -m stacks.register local` registers the local stack; switch with `zenml stack set NAME`.
"""


@click.command(epilog=EXAMPLES)
@click.option("--pipeline", type=click.Choice(sorted(DEFAULT_CONFIGS)), default="training", show_default=True)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Run config YAML (default: configs/<pipeline>.yaml).",
)
@click.option("--no-cache", is_flag=True, help="Re-run every step instead of reusing cached outputs.")
def main(pipeline: str, config_path: Path | None, no_cache: bool) -> None:
    """Run a har-clip pipeline with a YAML run config."""
    from har_core.hub import HubUnavailableError
    from har_core.preflight import PrerequisiteError, check_run_prerequisites
    from pipelines.run_config import RunConfigError, load_training_run_config

    config_path = config_path or DEFAULT_CONFIGS[pipeline]
    try:
        parameters = load_training_run_config(config_path)
        check_run_prerequisites(parameters)
    except (RunConfigError, HubUnavailableError, PrerequisiteError) as error:
        raise click.ClickException(str(error)) from error

    from zenml.client import Client
    from zenml.exceptions import StackValidationError

    from pipelines import training_pipeline

    stack = Client().active_stack_model
    logging.getLogger(__name__).info("Running the %s pipeline on stack %r with %s", pipeline, stack.name, config_path)
    try:
        run = training_pipeline.with_options(config_path=str(config_path), enable_cache=False if no_cache else None)()
    except StackValidationError as error:
        raise click.ClickException(
            f"{error}\nRegister and activate the local stack with `python -m stacks.register local`, "
            "or pick another with `zenml stack set NAME`."
        ) from error
    if run is not None:  # refresh: the returned model was fetched before the last step finished
        _print_where_to_look(Client().get_pipeline_run(run.id))


def _print_where_to_look(run) -> None:
    """Point the user at the run's results: ZenML dashboard and each experiment tracker of the stack."""
    from pipelines.tracker_links import tracker_pointers

    click.echo(f"\nPipeline run {run.name!r}: {run.status.value}.")
    click.echo("Browse runs and artifacts: zenml login --local   (the ZenML dashboard)")
    for line in tracker_pointers(run):
        click.echo(f"Browse metrics and plots in {line}")


if __name__ == "__main__":
    sys.exit(main())
