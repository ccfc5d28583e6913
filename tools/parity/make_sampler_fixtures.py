#!/usr/bin/env python3
"""Writes tests/fixtures/sampler.json: the index orders PyTorch's own samplers produce, for
tests/test_loader.cpp ("[loader]") to compare yolo/data/sampler.cpp against.

    /work/venv-ref/bin/python tools/parity/make_sampler_fixtures.py

Rows:
  distributed: list(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle,
               seed=seed, drop_last=False)) after set_epoch(epoch), for a grid of cases including
               n < world (padding longer than the list) and n divisible by world (no padding);
  randperm:    torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist(), including
               a seed above 2**32 (torch keeps its low 32 bits).
Needs only torch (no reference checkout). The output is deterministic.
"""
import argparse
import json
import os

import torch
from torch.utils.data import DistributedSampler


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "tests", "fixtures", "sampler.json")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=default_out)
    args = ap.parse_args()

    cases = []
    grid = [  # (n, world, seed, epoch, shuffle)
        (12, 1, 0, 0, True), (12, 2, 0, 0, True), (12, 2, 0, 1, True), (13, 2, 0, 3, True),
        (10, 3, 7, 2, True), (10, 3, 7, 2, False), (3, 8, 0, 0, True), (3, 8, 0, 0, False),
        (1, 4, 5, 9, True), (97, 4, 123, 11, True), (128, 8, 0, 299, True), (256, 2, 42, 0, True),
        (1000, 3, 2**32 + 5, 1, True),
    ]
    for n, world, seed, epoch, shuffle in grid:
        for rank in range(world):
            s = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=shuffle, seed=seed,
                                   drop_last=False)
            s.set_epoch(epoch)
            cases.append({"n": n, "world": world, "rank": rank, "seed": seed, "epoch": epoch,
                          "shuffle": shuffle, "indices": list(s)})

    perms = []
    for n, seed in [(0, 0), (1, 3), (2, 0), (10, 5), (100, 0), (1000, 12345), (5000, 2**32 + 1), (17, 2**63 - 1)]:
        g = torch.Generator()
        g.manual_seed(seed)
        perms.append({"n": n, "seed": seed, "perm": torch.randperm(n, generator=g).tolist()})

    out = {"torch": torch.__version__, "command": "tools/parity/make_sampler_fixtures.py",
           "distributed": cases, "randperm": perms}
    with open(args.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {os.path.normpath(args.out)}: {len(cases)} sampler rows, {len(perms)} randperm rows")


if __name__ == "__main__":
    main()
