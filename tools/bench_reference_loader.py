#!/usr/bin/env python3
"""Times the reference's own training data loader — utils/dataloaders.py create_dataloader(path, img,
batch, 32, hyp=<hyp yaml>, augment=True, workers=W, shuffle=True), i.e. mosaic, random_perspective,
HSV, flips and collate in W worker processes — so `yolo dataset bench` can be compared with it.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 /work/venv-ref/bin/python \
        tools/bench_reference_loader.py --ref /work/ref-yolov5 --data datasets/shapes640/data.yaml \
        --img 640 --batch 16 --workers 2 --batches 30 --warmup 3 [--cache ram]

Iterates the loader (InfiniteDataLoader, across epochs as train.py does) for --warmup batches, then
times --batches more: prints images/s as the median over windows of `workers` consecutive batches
(worker processes deliver in bursts) and as the total (images / wall time of the timed batches), in
the same words as `yolo dataset bench`. The reference writes its own labels/*.cache beside the labels (yolocore's
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
    ap.add_argument("--cache", default=None, choices=["ram"], help="the reference's --cache ram")
    args = ap.parse_args()

    ref = load(args.ref)
    quiet(ref)
    from utils.dataloaders import create_dataloader  # the reference's, importable after load()

    with open(args.hyp) as f:
        hyp = yaml.safe_load(f)
    loader, dataset = create_dataloader(train_source(args.data), args.img, args.batch, 32, hyp=hyp,
                                        augment=True, cache=args.cache, workers=args.workers,
                                        shuffle=True, prefix="train: ")
    print(f"reference loader: {len(dataset)} images, batch {args.batch}, img {args.img}, "
          f"workers {loader.num_workers} (asked {args.workers}), {len(loader)} batches/epoch")

    # arrival[k + 1]: when batch k was in hand; arrival[0]: before the first batch was asked for.
    arrival, sizes = [time.perf_counter()], []
    while len(sizes) < args.warmup + args.batches:
        for imgs, targets, paths, _ in loader:
            arrival.append(time.perf_counter())
            sizes.append(imgs.shape[0])
            if len(sizes) >= args.warmup + args.batches:
                break
    # Worker processes deliver batches in bursts: the median is over windows of `workers`
    # consecutive timed batches (one batch with 0 or 1 worker), as `yolo dataset bench` does.
    window = max(1, min(loader.num_workers, args.batches))
    w0, n = args.warmup, args.batches
    rates = [sum(sizes[k + 1 - window:k + 1]) / (arrival[k + 1] - arrival[k + 1 - window])
             for k in range(w0 + window - 1, w0 + n)]
    timed = sizes[w0:]
    total = arrival[w0 + n] - arrival[w0]
    print(f"reference loader: {sum(timed)} images in {n} batches after {w0} warm-up: "
          f"median {statistics.median(rates):.1f} images/s, total {sum(timed) / total:.1f} images/s")


if __name__ == "__main__":
    main()
