"""(LQ, GT) pairs per second per core made by RealESRGANDataset (Real-ESRGAN's degradations, in numpy + OpenCV).

One process, OpenCV pinned to one thread, synthetic anime-style GTs (common_data.data.demo_data). Rows: the whole item
(PNG decode + flips + crop to 400 + degradation + crops + USM GT) read from a 400x400 PNG (the sub-images that
``tools/prepare_data.py subimages --crop-size 400`` writes, as Real-ESRGAN's recipe) and from a 512x512 PNG, and the
item without the decode (GT already in memory).
"Per core" is items per CPU-second of this process, so other load on the machine counts against it only through
shared caches; a reference operation (a 51x51 Gaussian blur of a 400x400x3 float32 image) is timed alongside so
that numbers from a busy machine can be compared.

    python benchmarks/degradation_speed.py --items 300 --preset realesrgan_default
"""
import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(fn, items):
    for _ in range(5):  # warm up (tables, caches)
        fn()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(items):
        fn()
    return items / (time.process_time() - cpu), items / (time.perf_counter() - wall)


def reference_ms(cv2, np, repeats=30):
    """Median CPU milliseconds of one cv2.GaussianBlur(400x400x3 float32, 51x51)."""
    img = np.random.default_rng(0).random((400, 400, 3), dtype=np.float32)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        cv2.GaussianBlur(img, (51, 51), 0)
        times.append(time.process_time() - start)
    return 1000 * sorted(times)[repeats // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--preset", default="realesrgan_default")
    parser.add_argument("--gt-size", type=int, default=256)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import cv2
    import numpy as np

    from common_data.data.demo_data import render_image
    from common_data.data.imageio import write_image
    from common_data.data.realesrgan_dataset import RealESRGANDataset

    cv2.setNumThreads(1)
    before = reference_ms(cv2, np)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in (400, 512):
            image = render_image(np.random.default_rng(args.seed), size)
            root = os.path.join(folder, str(size))
            os.makedirs(root)
            write_image(os.path.join(root, "gt.png"), image)
            ds = RealESRGANDataset(root, scale=args.scale, gt_size=args.gt_size, preset=args.preset, seed=args.seed)
            rows.append((f"dataset item from a {size}x{size} PNG (decode included)", measure(lambda: ds[0], args.items)))
        rng = np.random.default_rng(args.seed)
        gt = image.astype(np.float32) / 255
        rows.append(("GT in memory (no decode)", measure(lambda: ds.make_pair(gt, rng), args.items)))
    reference = (before + reference_ms(cv2, np)) / 2
    print("| preset | GT | what | items | pairs/s per core (CPU time) | pairs/s wall | ms CPU per pair "
          "| reference blur ms |")
    print("|---|---|---|---|---|---|---|---|")
    for what, (per_cpu, per_wall) in rows:
        print(f"| {args.preset} | {args.gt_size} | {what} | {args.items} | {per_cpu:.1f} | "
              f"{per_wall:.1f} | {1000 / per_cpu:.1f} | {reference:.2f} |")


if __name__ == "__main__":
    main()
