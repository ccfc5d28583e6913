#!/usr/bin/env python3
"""Times the reference's own training data loader — utils/dataloaders.py create_dataloader(path, img,
batch, 32, hyp=<hyp yaml>, augment=True, workers=W, shuffle=True), i.e. mosaic, random_perspective,
HSV, flips and collate in W worker processes — so `yolo dataset bench` can be compared with it.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 /work/venv-ref/bin/python \
        tools/bench_reference_loader.py --ref /work/ref-yolov5 --data datasets/shapes640/data.yaml \
        --img 640 --batch 16 --workers 2 --batches 30 --warmup 3

Iterates the loader (InfiniteDataLoader, across epochs as train.py does) for --warmup batches, then
times --batches more: prints images/s as the median over batches (batch size / time between
consecutive batches) and as the total (images / wall time of the timed batches), in the same words
as `yolo dataset bench`. The reference writes its own labels/*.cache beside the labels (yolocore's
cache has another name, so the two never collide). Not part of the product (DESIGN.md tools/).
"""
import argparse
import os
import statistics
import sys
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "parity"))
from reference import load, quiet  # noqa: E402


def train_source(data_yaml):
    with open(data_yaml) as f:
        d = yaml.safe_load(f)
    root = d.get("path", "")
    if root and not os.path.isabs(root):
        root = os.path.join(os.path.dirname(os.path.abspath(data_yaml)), root)
    train = d["train"]
    if isinstance(train, list):
        return [os.path.join(root, t) for t in train]
    return os.path.join(root, train)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref", default=None, help="ultralytics/yolov5 checkout at 48a85314 (or YOLO_REF)")
    ap.add_argument("--data", default="datasets/shapes640/data.yaml")
    ap.add_argument("--hyp", default=os.path.join(here, "..", "configs", "hyp.scratch-low.yaml"))
    ap.add_argument("--img", type=int, default=640)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    args = ap.parse_args()

    ref = load(args.ref)
    quiet(ref)
    from utils.dataloaders import create_dataloader  # the reference's, importable after load()

    with open(args.hyp) as f:
        hyp = yaml.safe_load(f)
    loader, dataset = create_dataloader(train_source(args.data), args.img, args.batch, 32, hyp=hyp,
                                        augment=True, workers=args.workers, shuffle=True,
                                        prefix="train: ")
    print(f"reference loader: {len(dataset)} images, batch {args.batch}, img {args.img}, "
          f"workers {loader.num_workers} (asked {args.workers}), {len(loader)} batches/epoch")

    times, sizes = [], []
    seen = 0
    t_prev = time.perf_counter()
    t_start = t_prev  # end of the warm-up: the arrival of the last warm-up batch
    while seen < args.warmup + args.batches:
        for imgs, targets, paths, _ in loader:
            t = time.perf_counter()
            if seen >= args.warmup:
                times.append(t - t_prev)
                sizes.append(imgs.shape[0])
            elif seen == args.warmup - 1:
                t_start = t
            t_prev = t
            seen += 1
            if seen >= args.warmup + args.batches:
                break
    total = time.perf_counter() - t_start
    per_batch = [n / dt for n, dt in zip(sizes, times)]
    print(f"reference loader: {sum(sizes)} images in {len(sizes)} batches after {args.warmup} warm-up: "
          f"median {statistics.median(per_batch):.1f} images/s, total {sum(sizes) / total:.1f} images/s")


if __name__ == "__main__":
    main()
