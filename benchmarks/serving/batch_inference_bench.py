"""Batch inference: img/s of the pipeline's scoring step vs the in-process `Predictor` on the same images.

    python -m benchmarks.serving.batch_inference_bench                      # 600 images of 256 px, tiny CLIP, 3 repeats
    python -m benchmarks.serving.batch_inference_bench --images 1200 --backbone vit-b16

In a throw-away ZenML store: trains a model version with the quick config (1 epoch, ONNX export; `--backbone
vit-b16` builds CLIP ViT-B/16 at its real sizes, random init, no download), draws `--images` synthetic images, then
alternates, `--repeats` times: the in-process reference (`Predictor.predict` over batches of images decoded with
`open_image`, as a script would do it), `har_core.inference.batch.score_files` in the same process, and
`python run.py --pipeline inference` on the folder. The step's img/s is the scoring loop's own (`prediction_summary`);
ZenML's share (start-up, model load, artifact storage) is the run's wall time minus it. Goal: step >= 0.9x the
in-process reference. Medians of the repeats; a markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VIT_B16 = {"image_size": 224, "patch_size": 16, "hidden_size": 768, "num_layers": 12, "num_heads": 12}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=600, help="images to score (>= 500 for the issue's figure)")
    parser.add_argument("--size", type=int, default=256, help="side of the synthetic JPEGs")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", choices=["tiny", "vit-b16"], default="tiny")
    parser.add_argument("--keep", action="store_true", help="keep the temporary ZenML store (path printed)")
    arguments = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="har-clip-inference-bench-"))
    os.environ.update(
        ZENML_CONFIG_PATH=str(workdir / "zenml"),
        ZENML_ANALYTICS_OPT_IN="false",
        ZENML_REPOSITORY_PATH=str(workdir / "no-repository"),
        WANDB_DIR=str(workdir),
        WANDB_MODE="offline",
        HAR_CLIP_DATA_CACHE=str(workdir / "unpacked"),
        TOKENIZERS_PARALLELISM="false",
    )
    try:
        rows = run(workdir, arguments)
        print_table(rows, arguments)
    finally:
        if arguments.keep:
            print(f"\nStore kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(workdir: Path, arguments) -> dict[str, list[float]]:
    from zenml.utils import source_utils

    from stacks.register import load_stack_spec, register_stack

    source_utils.set_custom_source_root(str(PROJECT_ROOT))
    register_stack(load_stack_spec("local"), activate=True)
    version = train(workdir, arguments.backbone)
    folder = draw_images(workdir / "incoming", arguments.images, arguments.size)
    config = inference_config(workdir, version, folder, arguments.batch_size)
    rows: dict[str, list[float]] = {"reference": [], "score_files": [], "step": [], "step_wall": [], "run_wall": []}
    for _ in range(arguments.repeats):
        rows["reference"].append(in_process_reference(version, folder, arguments.batch_size))
        rows["score_files"].append(in_process_score_files(version, folder, config))
        step_ips, step_wall, run_wall = pipeline_run(config)
        rows["step"].append(step_ips)
        rows["step_wall"].append(step_wall)
        rows["run_wall"].append(run_wall)
    return rows


def train(workdir: Path, backbone: str) -> int:
    import yaml
    from click.testing import CliRunner

    from cli import main as run_cli
    from har_zenml.model_exports import find_model_version

    config = yaml.safe_load((PROJECT_ROOT / "configs" / "quickstart.yaml").read_text())
    parameters = config["parameters"]
    parameters["data"].update(cache_dir=str(workdir / "data"), synthetic={"images_per_class": 8, "image_size": 64})
    parameters["classifier"]["cache_dir"] = str(workdir / "backbones")
    if backbone == "vit-b16":
        parameters["classifier"]["tiny_backbone"] = {**VIT_B16, "projection_dim": 512}
    parameters["training"].update(epochs=1, output_dir=str(workdir / "checkpoints"))
    parameters["export"].update(formats=["onnx"], parity_images=16, output_dir=str(workdir / "exports"))
    parameters["benchmark"].update(batch_size=2, warmup=1, latency_iterations=2, throughput_iterations=1)
    path = workdir / "training.yaml"
    path.write_text(yaml.safe_dump(config))
    print(f"Training a {backbone} model version (1 epoch, ONNX export)…", flush=True)
    result = CliRunner().invoke(run_cli.main, ["--pipeline", "training", "--config", str(path), "--no-cache"])
    if result.exit_code != 0:
        raise SystemExit(result.output + repr(result.exception))
    return find_model_version("latest").number


def draw_images(folder: Path, count: int, size: int) -> Path:
    from har_core.config import SyntheticDataConfig
    from har_core.data.synthetic import generate_synthetic_images
    from har_core.runtime.labels import HAR_LABELS

    per_label = -(-count // len(HAR_LABELS))
    generate_synthetic_images(folder, HAR_LABELS, SyntheticDataConfig(images_per_class=per_label, image_size=size))
    for extra in sorted(folder.glob("*/*.jpg"))[count:]:  # exactly `count` images
        extra.unlink()
    (folder / ".synthetic.json").unlink()
    return folder


def inference_config(workdir: Path, version: int, folder: Path, batch_size: int) -> Path:
    import yaml

    config = yaml.safe_load((PROJECT_ROOT / "configs" / "inference.yaml").read_text())
    config["parameters"]["inference"].update(
        model_version=version,
        format="onnx",
        input={"source": "folder", "path": str(folder)},
        batch_size=batch_size,
        device="cpu",
        output_dir=str(workdir / "predictions"),
    )
    path = workdir / "inference.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _images(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/*.jpg"))


def in_process_reference(version: int, folder: Path, batch_size: int) -> float:
    """img/s of `Predictor.predict` over batches decoded with `open_image`: what a script would do."""
    from har_core.runtime.images import open_image
    from har_core.runtime.predictor import Predictor
    from har_zenml.model_exports import export_directory

    predictor = Predictor.from_export(export_directory(version, "onnx"), device="cpu")
    paths = _images(folder)
    started = time.perf_counter()
    for start in range(0, len(paths), batch_size):
        images = [open_image(path) for path in paths[start : start + batch_size]]
        predictor.predict(images, top_k=5)
        for image in images:
            image.close()
    return len(paths) / (time.perf_counter() - started)


def in_process_score_files(version: int, folder: Path, config_path: Path) -> float:
    """img/s of the step's own function (decoding one batch ahead), without ZenML."""
    from har_core.inference.batch import score_files
    from har_core.inference.inputs import LocalFolder, list_inputs
    from har_core.runtime.predictor import Predictor
    from har_zenml.model_exports import export_directory
    from har_zenml.run_config import load_inference_run_config

    config = load_inference_run_config(config_path).inference
    predictor = Predictor.from_export(export_directory(version, "onnx"), device="cpu")
    files, _ = list_inputs(LocalFolder(folder), config.input.max_files)
    with tempfile.TemporaryDirectory(prefix="har-clip-bench-predictions-") as parts:
        _, summary = score_files(predictor, LocalFolder(folder), files, config, str(version), output_dir=parts)
    return summary.images_per_s


def pipeline_run(config_path: Path) -> tuple[float, float, float]:
    """(the step's img/s, the step's wall time, the run's wall time through run.py)."""
    from click.testing import CliRunner
    from zenml.client import Client

    from cli import main as run_cli
    from har_zenml.names import INFERENCE_PIPELINE, PREDICT_FILES_STEP, PREDICTION_SUMMARY_ARTIFACT

    started = time.perf_counter()
    result = CliRunner().invoke(run_cli.main, ["--pipeline", "inference", "--config", str(config_path)])
    wall = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(result.output + repr(result.exception))
    step = Client().get_pipeline(INFERENCE_PIPELINE).last_run.steps[PREDICT_FILES_STEP]
    summary = step.outputs[PREDICTION_SUMMARY_ARTIFACT][0].load()
    return summary.images_per_s, (step.end_time - step.start_time).total_seconds(), wall


def print_table(rows: dict[str, list[float]], arguments) -> None:
    median = {name: statistics.median(values) for name, values in rows.items()}
    reference = median["reference"]
    print(
        f"\nBatch inference, {arguments.images} JPEGs of {arguments.size} px, {arguments.backbone} backbone, ONNX on "
        f"CPU, batch {arguments.batch_size}, median of {arguments.repeats} (load average {os.getloadavg()[0]:.1f}):\n"
    )
    print("| what | img/s | vs in-process Predictor | all repeats |")
    print("| --- | ---: | ---: | --- |")
    for name, title in (
        ("reference", "in-process `Predictor.predict` (decode, then predict, per batch)"),
        ("score_files", "in-process `score_files` (decoding one batch ahead)"),
        ("step", "pipeline step `predict_files` (its scoring loop)"),
    ):
        values = ", ".join(f"{value:.1f}" for value in rows[name])
        print(f"| {title} | {median[name]:.1f} | {median[name] / reference:.2f}x | {values} |")
    scoring_s = arguments.images / median["step"]
    print(
        f"\nZenML's share: the step took {median['step_wall']:.1f} s ({scoring_s:.1f} s of it scoring), the whole "
        f"`run.py --pipeline inference` {median['run_wall']:.1f} s: {median['run_wall'] - scoring_s:.1f} s of "
        "start-up, model look-up and load, artifact storage and CSV export."
    )


if __name__ == "__main__":
    main()
