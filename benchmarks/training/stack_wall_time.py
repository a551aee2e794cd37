"""Wall time of the quick training pipeline on the `local` stack vs the `remote-store` stack (S3 on a moto server,
MLflow on a real `mlflow server`, both started here on 127.0.0.1), in a throw-away ZenML store.

    python -m benchmarks.training.stack_wall_time                 # configs/quickstart.yaml with 2 epochs
    python -m benchmarks.training.stack_wall_time --epochs 20     # the full quick run

Prints a markdown table. The difference is the price of moving every artifact through an object store and every
metric through an HTTP tracking server, which is what a cluster pays too.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=PROJECT_ROOT / "configs" / "quickstart.yaml")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the temporary ZenML/MLflow stores (path printed)")
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="har-clip-stack-bench-"))
    os.environ.update(
        ZENML_CONFIG_PATH=str(workdir / "zenml"),
        ZENML_ANALYTICS_OPT_IN="false",
        ZENML_REPOSITORY_PATH=str(workdir / "no-repository"),
        WANDB_DIR=str(workdir),
        HAR_CLIP_DATA_CACHE=str(workdir / "unpacked"),
    )
    import yaml
    from zenml.utils import source_utils

    from stacks.register import load_stack_spec, register_stack
    from stacks.servers import remote_store_servers

    source_utils.set_custom_source_root(str(PROJECT_ROOT))
    config = yaml.safe_load(arguments.config.read_text())
    config["parameters"]["training"]["epochs"] = arguments.epochs
    config["parameters"]["data"]["cache_dir"] = str(workdir / "data")
    config["parameters"]["classifier"]["cache_dir"] = str(workdir / "backbones")
    config["parameters"]["training"]["output_dir"] = str(workdir / "checkpoints")
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))

    _warm_up(config_path)  # draw the images and build the tiny backbone once, outside the timed runs
    rows = []
    register_stack(load_stack_spec("local"))
    rows.append(("local", *_timed_run(config_path)))
    with remote_store_servers(workdir) as servers:
        os.environ.update(servers)
        register_stack(load_stack_spec("remote-store"))
        rows.append(("remote-store (moto S3 + mlflow server)", *_timed_run(config_path)))
    print(f"\nQuick training pipeline, {arguments.epochs} epochs, --no-cache ({arguments.config.name}):\n")
    print("| stack | wall time (s) | status |")
    print("| --- | ---: | --- |")
    for name, seconds, status in rows:
        print(f"| {name} | {seconds:.1f} | {status} |")
    if arguments.keep:
        print(f"\nStores kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def _warm_up(config_path: Path) -> None:
    from har_core.data.sources import image_folder_for
    from har_core.model.classifier import build_classifier
    from har_zenml.run_config import load_training_run_config

    parameters = load_training_run_config(config_path)
    image_folder_for(parameters.data)
    build_classifier(parameters.classifier, parameters.data.labels)


def _timed_run(config_path: Path) -> tuple[float, str]:
    from click.testing import CliRunner
    from zenml.client import Client

    from cli.main import main as run_command
    from har_zenml.names import TRAINING_PIPELINE

    started = time.perf_counter()
    result = CliRunner().invoke(run_command, ["--config", str(config_path), "--no-cache"])
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        return seconds, f"failed: {result.output[-300:]}"
    return seconds, Client().get_pipeline(TRAINING_PIPELINE).last_run.status.value


if __name__ == "__main__":
    main()
