"""How well each out-of-distribution score tells a run's test images from strange ones, as AUROC (1: perfectly).

    python -m benchmarks.serving.ood_bench                                   # the last training run's onnx export
    python -m benchmarks.serving.ood_bench --photos ../shared/sample-images  # plus a folder of real photos
    python -m benchmarks.serving.ood_bench --run NAME --format onnx-int8

In distribution: the run's test split (at most `--images`). Out of it: noise at the training images' size and at a
camera's 640x480, synthetic shapes of the classes the model lacks, grey frames, and any `--photos` folder (images
under it, any depth). Every score is computed from the served export's own outputs (`Predictor.run`), so the table
holds for what the Bento answers; the last columns are the share of each set the export abstains on or flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="training pipeline run name (default: the last one)")
    parser.add_argument("--format", default="onnx")
    parser.add_argument("--photos", type=Path, action="append", default=[], help="a folder of out-of-domain photos")
    parser.add_argument("--images", type=int, default=200, help="images per set")
    arguments = parser.parse_args()

    from zenml.client import Client

    from har_core.data.dataset import load_image
    from har_core.evaluation.calibration import ood_auroc
    from har_core.evaluation.ood_sets import noise_images, unseen_shape_images
    from har_core.runtime.predictor import Predictor
    from har_zenml.names import DATASET_ARTIFACT, EXPORT_STEP, EXPORTS_ARTIFACT, TRAINING_PIPELINE

    client = Client()
    run = client.get_pipeline_run(arguments.run) if arguments.run else client.get_pipeline(TRAINING_PIPELINE).last_run
    data_step = next(step for name, step in run.steps.items() if DATASET_ARTIFACT in step.outputs)
    manifest = data_step.outputs[DATASET_ARTIFACT][0].load()
    bundle = run.steps[EXPORT_STEP].outputs[EXPORTS_ARTIFACT][0].load()
    predictor = Predictor.from_export(bundle.directory(arguments.format), device="cpu")
    calibration = predictor.calibration
    if calibration is None:
        raise SystemExit(f"The {arguments.format} export of {run.name} carries no calibration (made before it).")
    count, size = arguments.images, 96  # the quickstart's synthetic image size
    rng = np.random.default_rng(0)
    sets = {
        "test split (in distribution)": [load_image(record.path) for record in manifest.split("test")[:count]],
        f"noise {size} px": noise_images(count, size, 1),
        "noise 640x480": [Image.fromarray(rng.integers(0, 256, (480, 640, 3), np.uint8)) for _ in range(count)],
        "unseen synthetic shapes": unseen_shape_images(count, size, len(predictor.labels), 2),
        "grey frames": [Image.new("RGB", (640, 480), (int(v),) * 3) for v in rng.integers(0, 256, count)],
    }
    for folder in arguments.photos:
        photos = sorted(path for path in folder.rglob("*") if path.suffix.lower() in IMAGE_SUFFIXES)[:count]
        sets[f"photos: {folder.name} ({len(photos)})"] = [load_image(str(path)) for path in photos]
    names = ("mahalanobis", "max_cosine", "max_probability")
    scores: dict[str, dict[str, np.ndarray]] = {}
    caught: dict[str, float] = {}
    for name, images in sets.items():
        answers = predictor.classify(images, top_k=1)
        caught[name] = float(np.mean([a.abstained or a.verdict.out_of_distribution for a in answers]))
        embeddings, logits = predictor.run(_pixels(predictor, images))
        scores[name] = {score: predictor.ood_scores(embeddings, logits, score) for score in names}
    reference = next(iter(sets))
    print(f"\nOut-of-distribution AUROC against the {reference}, {run.name}, {arguments.format} "
          f"(serving score: {calibration.ood_score}, temperature {calibration.temperature:.3f}):\n")  # fmt: skip
    print("| set | " + " | ".join(names) + " | abstained or flagged |")
    print("| --- |" + " ---: |" * (len(names) + 1))
    for name in sets:
        aurocs = [
            ood_auroc(scores[reference][s], scores[name][s]) if name != reference else float("nan") for s in names
        ]
        print(
            f"| {name} | " + " | ".join("—" if np.isnan(a) else f"{a:.3f}" for a in aurocs) + f" | {caught[name]:.2f} |"
        )


def _pixels(predictor, images):
    from har_core.runtime.preprocess import preprocess_batch

    return preprocess_batch(images, predictor.manifest.preprocess)


if __name__ == "__main__":
    main()
