#!/usr/bin/env python3
"""Times the reference model (ultralytics/yolov5 Model from the same yaml) on the rows of
`yolo_bench --model CFG`, under the same row names, as JSON lines for tools/bench_table.py.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 /work/venv-ref/bin/python \
        tools/bench_reference_model.py --ref /work/ref-yolov5 --cfg configs/yolov5n.yaml \
        --batch 8 --img 320 --json ref.jsonl
    python3 tools/bench_table.py ours.jsonl ref.jsonl

On a GPU (the same rows as `yolo_bench --device cuda --model CFG`):

    python3 tools/bench_reference_model.py --device cuda --ref REF --cfg configs/yolov5s.yaml \
        --batch 16 --img 640 --json ref_cuda.jsonl

Rows (channels-first NCHW input as the reference runs it; on the CPU torch.set_num_threads; on CUDA
plain FP32 with TF32 off, as yolocore's f32 path, and cudnn.benchmark on, as ultralytics sets it):
  model_fwd/<stem>.eval        model.eval() forward under torch.no_grad() (Detect decodes the boxes)
  model_fwd/<stem>.eval_fused  the same on a deep copy after model.fuse() (BN folded into the convs)
  model_fwd_bwd/<stem>.train   model.train(): zero_grad, forward, loss = sum over levels of
                               sum(level * fixed uniform(-1, 1) coefficients), loss.backward().
                               A stand-in loss, not the YOLO loss (ComputeLoss).
The median and min of --repeats timed calls after --warmup calls (time.perf_counter; on CUDA after
torch.cuda.synchronize, so each call's GPU work is inside its time). Before timing, the fused and
unfused eval outputs are compared (max |diff| is printed). Output device "torch-cpu" or "torch-cuda";
on CUDA each row also gives peak_mib, torch.cuda.max_memory_allocated over its timed calls.
Not part of the product (DESIGN.md tools/).
"""
import argparse
import copy
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "parity"))
from reference import load, quiet  # noqa: E402


def timed(fn, warmup, repeats, sync):
    for _ in range(warmup):
        fn()
    sync()
    us = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        us.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(us), min(us)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="ultralytics/yolov5 checkout (else $YOLO_REF)")
    ap.add_argument("--cfg", default="configs/yolov5n.yaml")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--img", type=int, default=320)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--filter", default="", help="only rows whose name contains this")
    ap.add_argument("--json", help="write one JSON object per row here")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
        sync = torch.cuda.synchronize
    else:
        sync = lambda: None  # noqa: E731
    ref = load(args.ref)
    quiet(ref)
    torch.manual_seed(0)
    model = ref.Model(args.cfg).float().to(device)
    stem = os.path.basename(args.cfg)
    stem = stem[:-5] if stem.endswith(".yaml") else stem
    x = torch.rand(args.batch, 3, args.img, args.img, device=device)
    shape = "%dx3x%dx%d (NCHW)" % (args.batch, args.img, args.img)

    model.train()
    with torch.no_grad():
        coef = [torch.empty_like(o).uniform_(-1.0, 1.0) for o in model(x)]

    def train_step():
        model.zero_grad()
        out = model(x)
        loss = sum((o * c).sum() for o, c in zip(out, coef))
        loss.backward()

    model.eval()
    fused = copy.deepcopy(model).fuse().eval()

    def eval_fn(m):
        def fn():
            with torch.no_grad():
                return m(x)[0]
        return fn

    a, b = eval_fn(model)(), eval_fn(fused)()
    diff = (a - b).abs().max().item()
    fused_ok = torch.allclose(b, a, atol=2e-3, rtol=1e-3)  # yolo_bench's kFusedVsUnfused
    where = torch.cuda.get_device_name() if args.device == "cuda" else "%d threads" % torch.get_num_threads()
    print("reference %s (commit %s), torch %s, %s; fused vs unfused decoded max |diff| %.3g"
          % (ref.root, ref.commit, torch.__version__, where, diff))

    rows = [("model_fwd/%s.eval" % stem, model, eval_fn(model)),
            ("model_fwd/%s.eval_fused" % stem, fused, eval_fn(fused)),
            ("model_fwd_bwd/%s.train" % stem, model, train_step)]
    out = open(args.json, "w") if args.json else None
    print("%-36s %-22s %11s %11s" % ("name", "shape", "median_us", "min_us"))
    for name, m, fn in rows:
        if args.filter not in name:
            continue
        m.train(name.startswith("model_fwd_bwd/"))
        if args.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        med, lo = timed(fn, args.warmup, args.repeats, sync)
        peak_mib = torch.cuda.max_memory_allocated() / 2 ** 20 if args.device == "cuda" else 0
        row = {"name": name, "device": "torch-" + args.device, "dtype": "f32", "shape": shape, "median_us": med,
               "min_us": lo, "gbps": 0, "tflops": 0, "pct_peak": 0, "peak_mib": peak_mib, "validated": fused_ok or "train" in name,
               "status": "ok" if fused_ok or "train" in name else "FAIL: fused vs unfused",
               "threads": torch.get_num_threads(), "torch": torch.__version__}
        print("%-36s %-22s %11.1f %11.1f" % (name, shape, med, lo))
        sys.stdout.flush()
        if out:
            out.write(json.dumps(row) + "\n")
            out.flush()
    if out:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
