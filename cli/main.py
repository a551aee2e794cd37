"""The command line: `python run.py …` (the documented entry) and the `har-clip` console script with subcommands.

`main` is run.py's one command, every option of it; `cli` is the `har-clip` group, whose pipeline subcommands
(`train`, `deploy`, `infer`, …) invoke `main` with their options, so both spellings run the same code. Subcommands
that live in other modules are imported only when called, so `har-clip --help` stays quick.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = {
    "training": PROJECT_ROOT / "configs" / "training.yaml",
    "deployment": PROJECT_ROOT / "configs" / "deployment.yaml",
    "inference": PROJECT_ROOT / "configs" / "inference.yaml",
}
# Operations around the deployment pipeline: commands (no ZenML pipeline run is recorded for them).
COMMANDS = {
    "rollback": PROJECT_ROOT / "configs" / "deployment.yaml",  # deploys the restored version with this config
    "undeploy": PROJECT_ROOT / "configs" / "deployment.yaml",
    "benchmark": None,  # benchmarks an existing version's exports (--model-version, --format, --min-accuracy)
}
EXPORT_FORMATS = ("pytorch", "torchscript", "onnx", "onnx-int8", "tensorrt")  # har_core.runtime.settings

EXAMPLES = """
\b
Examples:
  python run.py --pipeline training --config configs/quickstart.yaml   # offline, tiny CLIP, synthetic images
  python run.py --pipeline training                                    # configs/training.yaml (needs the HF Hub)
  python run.py --pipeline training --config configs/quickstart.yaml --no-cache
  python run.py --pipeline deployment      # configs/deployment.yaml: production version, fastest gated format
  python run.py --command undeploy         # command: stop and remove that deployment
  python run.py --command rollback         # command: deploy the previous production version, then restore its stage
  python run.py --reproduce production     # re-run how that model version was trained and compare (or a run name)
  python run.py --pipeline inference       # configs/inference.yaml: score a folder's images and videos
  python run.py --command benchmark --model-version production --format onnx --min-accuracy 0.9
                                           # command: benchmark an existing version's export; exit 1 below the floor
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
@click.option(
    "--command",
    type=click.Choice(sorted(COMMANDS)),
    default=None,
    help="Run an operation around the deployment pipeline, or benchmark a version's exports, instead of a pipeline "
    "(no ZenML run is recorded).",
)
@click.option("--no-cache", is_flag=True, help="Re-run every step instead of reusing cached outputs.")
@click.option(
    "--reproduce",
    metavar="RUN_OR_VERSION",
    default=None,
    help="Re-run the recorded config of a training run (name) or model version (number, stage) and compare.",
)
@click.option("--allow-drift", is_flag=True, help="With --reproduce: run although code, lock or data differ.")
@click.option(
    "--model-version", default="production", show_default=True, help="benchmark: a stage, version number or latest."
)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(EXPORT_FORMATS),
    default=None,
    help="benchmark: one format (default: every exported format).",
)
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    default=None,
    help="benchmark: exit 1 when a format's top-1 accuracy on the evaluation split is below this.",
)
def main(
    pipeline: str,
    config_path: Path | None,
    command: str | None,
    no_cache: bool,
    reproduce: str | None = None,
    allow_drift: bool = False,
    model_version: str = "production",
    export_format: str | None = None,
    min_accuracy: float | None = None,
) -> None:
    """Run a har-clip pipeline (or a deployment or benchmark command) with a YAML run config."""
    if reproduce is not None:  # cli/reproduce_command.py: checks, then this command's training run, then compares
        from cli.reproduce_command import reproduce_run

        context = click.get_current_context()
        return reproduce_run(reproduce, allow_drift, lambda path: context.invoke(main, config_path=path, no_cache=True))
    if command == "benchmark":
        from cli.benchmark_command import run_benchmark_command

        return run_benchmark_command(model_version, export_format, min_accuracy)
    if command is not None or pipeline == "deployment":
        from cli.deploy_command import run_deployment_command

        name = command or pipeline
        return run_deployment_command(name, config_path or {**DEFAULT_CONFIGS, **COMMANDS}[name])
    config_path = config_path or DEFAULT_CONFIGS[pipeline]
    if pipeline == "inference":
        from cli.inference_command import run_inference

        return run_inference(config_path, no_cache, PROJECT_ROOT)
    # W&B writes offline runs under $WANDB_DIR/wandb, else under the working directory: the project's, always.
    os.environ.setdefault("WANDB_DIR", str(PROJECT_ROOT))
    _check_before_run(config_path)

    from zenml.client import Client
    from zenml.exceptions import StackValidationError

    from cli.console import hide_console_tracebacks
    from cli.run_summary import failure_lines, latest_run_id, run_since, summary_lines
    from pipelines.training import training_pipeline

    stack = Client().active_stack_model
    logging.getLogger(__name__).info("Running the %s pipeline on stack %r with %s", pipeline, stack.name, config_path)
    previous_run = latest_run_id(training_pipeline.name)
    hide_console_tracebacks()
    try:
        training_pipeline.with_options(config_path=str(config_path), enable_cache=False if no_cache else None)()
    except StackValidationError as error:
        raise click.ClickException(
            f"{error}\nRegister and activate the local stack with `python -m stacks.register local`, "
            "or pick another with `zenml stack set NAME`."
        ) from error
    except Exception as error:  # a step failed: its cause in a few lines, the traceback stays in ZenML's logs
        failed = run_since(training_pipeline.name, previous_run)
        if failed is None:
            raise
        raise click.ClickException("\n".join(failure_lines(failed))) from error
    run = run_since(training_pipeline.name, previous_run)  # fetched anew: steps finished after the call returned
    if run is not None:
        click.echo("\n" + "\n".join(summary_lines(run)))


def _check_before_run(config_path: Path) -> None:
    """Every check that can fail before a run starts, cheapest first; each failure is a short `Error:` block.

    The config's keys and `parameters:` are validated before anything heavy is imported (no torch, transformers,
    MLflow or ZenML), so a typo is reported in about a second; local image trees are scanned next, still without
    torch, so every data problem is listed before a pipeline run or model version exists.
    """
    from har_core.locations import anchor_paths
    from har_zenml.run_config import RunConfigError, check_zenml_run_settings, load_training_run_config

    try:  # relative paths mean the project's folders, as they do in the steps (har_zenml/project_paths.py)
        parameters = anchor_paths(load_training_run_config(config_path), PROJECT_ROOT)
    except RunConfigError as error:
        raise click.ClickException(str(error)) from error

    from har_core.data.scan import DataCheckError, plan_local_data

    try:  # local sources only: fetched ones (Hugging Face) are checked inside load_data
        plan = plan_local_data(parameters.data)
    except (DataCheckError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    for note in plan.notes if plan else ():
        click.echo(note)

    from har_core.hub_probe import HubUnavailableError
    from har_core.preflight import PrerequisiteError, check_run_prerequisites

    try:
        check_run_prerequisites(parameters)
        check_zenml_run_settings(config_path)
    except (RunConfigError, HubUnavailableError, PrerequisiteError) as error:
        raise click.ClickException(str(error)) from error


class LazyGroup(click.Group):
    """A group whose commands named in `lazy` ("module:attribute") are imported when asked for (click's own recipe)."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.lazy:
            return super().get_command(ctx, name)
        import importlib

        module, _, attribute = self.lazy[name].partition(":")
        return getattr(importlib.import_module(module), attribute)


GROUP_EXAMPLES = """
\b
Examples:
  har-clip train --config configs/quickstart.yaml   # offline, tiny CLIP, synthetic images
  har-clip deploy                                   # configs/deployment.yaml
  har-clip infer                                    # configs/inference.yaml
  har-clip benchmark --model-version production --format onnx --min-accuracy 0.9
  har-clip reproduce production
  har-clip register-stack local
\b
`har-clip run` takes run.py's options as they are (`python run.py --help`).
"""


@click.group(
    cls=LazyGroup,
    epilog=GROUP_EXAMPLES,
    lazy={
        "publish": "cli.publish_command:main",
        "train-multinode": "cli.multinode_command:main",
        "register-stack": "stacks.register:main",
    },
)
def cli() -> None:
    """har-clip: train, evaluate, export, promote, deploy and serve the CLIP action classifier."""


cli.add_command(main, name="run")
CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Run config YAML (default: the pipeline's in configs/).",
)
NO_CACHE_OPTION = click.option("--no-cache", is_flag=True, help="Re-run every step instead of reusing cached outputs.")


@cli.command()
@CONFIG_OPTION
@NO_CACHE_OPTION
@click.pass_context
def train(ctx: click.Context, config_path: Path | None, no_cache: bool) -> None:
    """Run the training pipeline (default config: configs/training.yaml)."""
    ctx.invoke(main, pipeline="training", config_path=config_path, no_cache=no_cache)


@cli.command()
@CONFIG_OPTION
@click.pass_context
def deploy(ctx: click.Context, config_path: Path | None) -> None:
    """Run the deployment pipeline: the production version's fastest gated format, smoke-tested."""
    ctx.invoke(main, pipeline="deployment", config_path=config_path)


@cli.command()
@CONFIG_OPTION
@NO_CACHE_OPTION
@click.pass_context
def infer(ctx: click.Context, config_path: Path | None, no_cache: bool) -> None:
    """Run the batch inference pipeline over a folder's images and videos."""
    ctx.invoke(main, pipeline="inference", config_path=config_path, no_cache=no_cache)


@cli.command()
@CONFIG_OPTION
@click.pass_context
def undeploy(ctx: click.Context, config_path: Path | None) -> None:
    """Stop and remove the deployment."""
    ctx.invoke(main, command="undeploy", config_path=config_path)


@cli.command()
@CONFIG_OPTION
@click.pass_context
def rollback(ctx: click.Context, config_path: Path | None) -> None:
    """Deploy the previous production version, then restore its stage."""
    ctx.invoke(main, command="rollback", config_path=config_path)


@cli.command()
@click.option("--model-version", default="production", show_default=True, help="A stage, version number or latest.")
@click.option("--format", "export_format", type=click.Choice(EXPORT_FORMATS), default=None, help="One format.")
@click.option("--min-accuracy", type=click.FloatRange(0, 1), default=None, help="Exit 1 below this top-1 accuracy.")
@click.pass_context
def benchmark(ctx: click.Context, model_version: str, export_format: str | None, min_accuracy: float | None) -> None:
    """Benchmark an existing version's exports (every exported format unless --format)."""
    ctx.invoke(
        main, command="benchmark", model_version=model_version, export_format=export_format, min_accuracy=min_accuracy
    )


@cli.command()
@click.argument("run_or_version")
@click.option("--allow-drift", is_flag=True, help="Run although code, lock or data differ.")
@click.pass_context
def reproduce(ctx: click.Context, run_or_version: str, allow_drift: bool) -> None:
    """Re-run how a training run (name) or model version (number, stage) was trained, and compare."""
    ctx.invoke(main, reproduce=run_or_version, allow_drift=allow_drift)
