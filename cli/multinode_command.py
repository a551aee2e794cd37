"""`har-clip train-multinode`: validate a multi-node run config, then run the multi-node pipeline.

python -m cli.multinode_command --config configs/training_multinode.yaml   # on the gpu-cluster stack
"""

from pathlib import Path

import click

from har_core.config import MultiNodeTrainingParameters
from har_zenml.multinode_job import check_multinode, configured_pod_counts
from har_zenml.names import TRAIN_COMMAND_STEP
from har_zenml.run_config import RunConfigError, load_training_run_config, read_run_config
from pipelines.multinode_training import multinode_training_pipeline


@click.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(config_path: Path) -> None:
    """Validate the run config (parameters: the training ones plus `nodes`), then run on the active stack."""
    try:
        parameters = load_training_run_config(config_path, schema=MultiNodeTrainingParameters)
        step_settings = (read_run_config(config_path).get("steps") or {}).get(TRAIN_COMMAND_STEP) or {}
        check_multinode(
            parameters.training, parameters.nodes, configured_pod_counts(step_settings.get("settings") or {})
        )
    except (RunConfigError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    multinode_training_pipeline.with_options(config_path=str(config_path))()


if __name__ == "__main__":
    main()
