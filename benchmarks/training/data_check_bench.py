"""What the pre-run data scan costs: draw N synthetic JPEGs at a realistic size, then time `plan_image_folder`.

    python -m benchmarks.training.data_check_bench --images 12600 --size 256

The scan reads every file, hashes it (sha256, for leakage) and decodes it at reduced JPEG scale (truncation
check); it runs in threads. Prints a markdown table; numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

from har_core.config import DataConfig
from har_core.data.scan import plan_image_folder
from har_core.data.synthetic import draw_class_image
from har_core.runtime.labels import HAR_LABELS


def draw_tree(root: Path, images: int, size: int) -> int:
    """`images` JPEGs spread over the 15 labels; returns the bytes written."""
    rng, written = random.Random(0), 0
    for number in range(images):
        index = number % len(HAR_LABELS)
        folder = root / HAR_LABELS[index]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{number:06d}.jpg"
        draw_class_image(index, size, rng).save(path, quality=90)
        written += path.stat().st_size
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=12600)
    parser.add_argument("--size", type=int, default=256, help="square image side in pixels")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        written = draw_tree(root, args.images, args.size)
        config = DataConfig(source="folder", root=root)
        timings = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            plan = plan_image_folder(root, config)
            timings.append(time.perf_counter() - start)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| images | size | MiB on disk | scan s (each run) | ms / image | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- |")
    best = min(timings)
    print(
        f"| {sum(len(images) for images in plan.splits.values())} | {args.size}x{args.size} "
        f"| {written / 2**20:.0f} | {', '.join(f'{t:.1f}' for t in timings)} | {best / args.images * 1000:.2f} "
        f"| {peak_mib:.0f} |"
    )


if __name__ == "__main__":
    main()
