#!/usr/bin/env python3
"""Times yolo_bench's rows in PyTorch (the baseline), with the same names, shapes and JSON lines.

The row list comes from yolo_bench itself, so shapes cannot drift:
    build/bin/yolo_bench --device cuda --list-json rows.jsonl
    python3 tools/bench_torch_ops.py --rows rows.jsonl --device cuda --json torch.jsonl
or let this script call the binary:
    python3 tools/bench_torch_ops.py --yolo-bench build/bin/yolo_bench --device cpu --batch 1 \
        --img 320 --threads 2 --json torch.jsonl
Activations are channels_last NCHW tensors (NHWC in memory, like ours). Timing: CUDA events per
repeat on the GPU, time.perf_counter on the CPU; the median and min are reported. Bytes and FLOPs
for GB/s and TFLOP/s are the spec's own numbers, and % peak uses a copy and a GEMM measured here.
Output device is "torch-cpu" or "torch-cuda". Not part of the product (DESIGN.md tools/).
"""
import argparse
import json
import math
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

CL = torch.channels_last
BN_MOMENTUM, BN_EPS = 0.03, 1e-3
SGD_LR, SGD_MOMENTUM, SGD_WD = 0.01, 0.937, (5e-4, 0.0, 0.0)
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def nchw(spec, c=None, h=None):
    """Tensor shape (N, C, H, W) of the row's NHWC activation, optionally with other C / H."""
    hh = spec["h"] if h is None else h
    return (spec["n"], spec["c"] if c is None else c, hh, hh)


class Bench:
    def __init__(self, device, dtype):
        self.device, self.dtype = device, dtype

    def rand(self, shape, lo=-1.0, hi=1.0, dtype=None, channels_last=True, grad=False):
        t = torch.empty(shape, device=self.device, dtype=torch.float32).uniform_(lo, hi)
        t = t.to(dtype or self.dtype)
        if channels_last and t.dim() == 4:
            t = t.contiguous(memory_format=CL)
        return t.requires_grad_(grad)


def conv_out(spec):
    return (spec["h"] + 2 * spec["pad"] - spec["k"]) // spec["stride"] + 1


def build(spec, b):
    """Returns (fn, tensors): fn() runs the op once; tensors sizes the working set for rotation."""
    op = spec["op"]
    s, p = spec["stride"], spec["pad"]
    if op.startswith("conv"):
        fan = spec["k"] * spec["k"] * spec["c"]
        x = b.rand(nchw(spec))
        w = b.rand((spec["out_c"], spec["c"], spec["k"], spec["k"]), -fan ** -0.5, fan ** -0.5)
        bias = b.rand((spec["out_c"],), channels_last=False) if spec["bias"] else None
        oh = conv_out(spec)
        if op == "conv_fwd":
            return (lambda: F.conv2d(x, w, bias, s, p)), [x, w]
        if op in ("conv_bwd_data", "conv_bwd_filter"):
            dy = b.rand((spec["n"], spec["out_c"], oh, oh))
            mask = [True, False, False] if op == "conv_bwd_data" else [False, True, spec["bias"]]
            bias_sizes = [spec["out_c"]] if spec["bias"] else None

            def fn():
                return torch.ops.aten.convolution_backward(
                    dy, x, w, bias_sizes, [s, s], [p, p], [1, 1], False, [0, 0], 1, mask)
            return fn, [x, w, dy]
        if op in ("conv_bn_silu_fwd", "conv_bn_silu_fwd_cudnn"):
            c = spec["out_c"]
            gamma = b.rand((c,), 0.5, 1.5, torch.float32)
            beta = b.rand((c,), -0.5, 0.5, torch.float32)
            rm = torch.zeros(c, device=b.device)
            rv = torch.ones(c, device=b.device)

            def fn():
                y = F.conv2d(x, w, None, s, p)
                return F.silu(F.batch_norm(y, rm, rv, gamma, beta, True, BN_MOMENTUM, BN_EPS))
            return fn, [x, w]
    if op in ("bn_silu_fwd", "bn_silu_eval", "bn_silu_bwd"):
        c = spec["c"]
        x = b.rand(nchw(spec), -2.0, 2.0, grad=op.endswith("bwd"))
        gamma = b.rand((c,), 0.5, 1.5, torch.float32, grad=op.endswith("bwd"))
        beta = b.rand((c,), -0.5, 0.5, torch.float32, grad=op.endswith("bwd"))
        rm, rv = torch.zeros(c, device=b.device), torch.ones(c, device=b.device)
        if op == "bn_silu_fwd":
            return (lambda: F.silu(F.batch_norm(x, rm, rv, gamma, beta, True, BN_MOMENTUM, BN_EPS))), [x]
        if op == "bn_silu_eval":
            rv = torch.rand(c, device=b.device) + 0.5
            return (lambda: F.silu(F.batch_norm(x, rm, rv, gamma, beta, False, BN_MOMENTUM, BN_EPS))), [x]
        out = F.silu(F.batch_norm(x, rm, rv, gamma, beta, True, BN_MOMENTUM, BN_EPS))
        dy = b.rand(nchw(spec))
        return (lambda: torch.autograd.grad(out, [x, gamma, beta], dy, retain_graph=True)), [x, dy]
    if op in ("upsample_fwd", "upsample_bwd"):
        x = b.rand(nchw(spec), grad=op.endswith("bwd"))
        if op == "upsample_fwd":
            return (lambda: F.interpolate(x, scale_factor=2, mode="nearest")), [x]
        out = F.interpolate(x, scale_factor=2, mode="nearest")
        dy = b.rand(out.shape)
        return (lambda: torch.autograd.grad(out, [x], dy, retain_graph=True)), [x, dy]
    if op == "concat_fwd":
        xs = [b.rand(nchw(spec, c=pc)) for pc in spec["parts"]]
        return (lambda: torch.cat(xs, 1)), xs
    if op == "concat_bwd":
        # cat's autograd backward returns narrow views; a consumer (conv backward) makes them
        # contiguous, so the split is timed with that copy, as our kernel writes dense tensors.
        dout = b.rand(nchw(spec))
        parts = spec["parts"]
        return (lambda: [g.contiguous(memory_format=CL) for g in dout.split(parts, 1)]), [dout]
    if op in ("sppf_fwd", "sppf_bwd", "maxpool_fwd", "maxpool_bwd"):
        k = spec["k"]
        x = b.rand(nchw(spec), grad=op.endswith("bwd"))

        def pool(t):
            return F.max_pool2d(t, k, 1, k // 2)

        def sppf():
            y1 = pool(x)
            y2 = pool(y1)
            return torch.cat([x, y1, y2, pool(y2)], 1)
        fwd = sppf if op.startswith("sppf") else (lambda: pool(x))
        if op.endswith("fwd"):
            return fwd, [x]
        out = fwd()
        dy = b.rand(out.shape)
        return (lambda: torch.autograd.grad(out, [x], dy, retain_graph=True)), [x, dy]
    if op == "add":
        a, c = b.rand(nchw(spec)), b.rand(nchw(spec))
        o = torch.empty_like(a)
        return (lambda: torch.add(a, c, out=o)), [a, c, o]
    if op == "cast":
        x = b.rand(nchw(spec), -4.0, 4.0)
        to = torch.float16 if x.dtype == torch.float32 else torch.float32
        return (lambda: x.to(to)), [x]
    if op in ("sgd_step", "sgd_step_per_tensor"):
        params = []
        for size in spec["sizes"]:
            t = torch.empty(size, device=b.device).uniform_(-1, 1).requires_grad_(True)
            t.grad = torch.empty(size, device=b.device).uniform_(-1, 1)
            params.append(t)
        groups = [{"params": [t for t, g in zip(params, spec["groups"]) if g == gi],
                   "weight_decay": SGD_WD[gi]} for gi in range(3)]
        opt = torch.optim.SGD(groups, lr=SGD_LR, momentum=SGD_MOMENTUM, nesterov=True,
                              foreach=(op == "sgd_step"))
        return (lambda: opt.step()), params + [t.grad for t in params]
    raise ValueError("no torch benchmark for op " + op)


def working_set(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def rotation_sets(device, bytes_per_set):
    """Same rule as bench/harness.cpp: rotate input sets until they exceed 3x the L2 cache."""
    l2 = 32 << 20
    if device.type == "cuda":
        l2 = getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 50 << 20)
    if bytes_per_set <= 0 or bytes_per_set >= 3 * l2:
        return 1
    return int(min(16, max(2, math.ceil(3 * l2 / bytes_per_set))))


def time_fn(device, fns, warmup, repeats):
    for i in range(warmup):
        fns[i % len(fns)]()
    times = []
    if device.type == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        stops = [torch.cuda.Event(enable_timing=True) for _ in range(repeats)]
        for r in range(repeats):
            starts[r].record()
            fns[(warmup + r) % len(fns)]()
            stops[r].record()
        torch.cuda.synchronize()
        times = [1000.0 * a.elapsed_time(z) for a, z in zip(starts, stops)]
    else:
        for r in range(repeats):
            t0 = time.perf_counter()
            fns[(warmup + r) % len(fns)]()
            times.append(1e6 * (time.perf_counter() - t0))
    times.sort()
    return statistics_median(times), times[0]


def statistics_median(v):
    m = len(v) // 2
    return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])


def measure_peaks(device):
    """Copy bandwidth (read + write) and GEMM throughput measured with torch on this device."""
    cuda = device.type == "cuda"
    nbytes = (1 << 30) if cuda else (256 << 20)
    src = torch.ones(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    med, _ = time_fn(device, [lambda: dst.copy_(src)], 2, 10 if cuda else 5)
    peaks = {"copy_gbps": 2.0 * nbytes / (med * 1e3)}
    sizes = {"f32": 4096, "f16": 8192} if cuda else {"f32": 2048}
    for name, n in sizes.items():
        a = torch.zeros(n, n, device=device, dtype=DTYPES[name])
        c = torch.zeros_like(a)
        med, _ = time_fn(device, [lambda: torch.matmul(a, c)], 2, 10 if cuda else 3)
        peaks[name] = 2.0 * n ** 3 / (med * 1e6)
    return peaks


def load_rows(args):
    if args.rows:
        with open(args.rows) as f:
            return [json.loads(line) for line in f if line.strip()]
    cmd = [args.yolo_bench, "--device", args.device, "--list-json", "-"]
    for flag in ("batch", "img", "filter"):
        if getattr(args, flag):
            cmd += ["--" + flag, str(getattr(args, flag))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--rows", help="row specs from `yolo_bench --list-json PATH`")
    src.add_argument("--yolo-bench", help="path to yolo_bench; runs it with --list-json")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, help="passed to yolo_bench --list-json")
    ap.add_argument("--img", type=int, help="passed to yolo_bench --list-json")
    ap.add_argument("--filter", default="", help="substring of the row names to run")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads on the CPU")
    ap.add_argument("--repeats", type=int, help="timed repeats (default 50 cuda, 10 cpu)")
    ap.add_argument("--warmup", type=int, help="untimed repeats (default 5 cuda, 2 cpu)")
    ap.add_argument("--json", help="write one JSON object per row to this file")
    ap.add_argument("--no-tf32", action="store_true",
                    help="disable TF32 for f32 convolutions and matmuls (PyTorch allows it for "
                         "cuDNN convolutions by default); use it to compare plain FP32 with FP32")
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    else:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = not args.no_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
    repeats = args.repeats or (50 if device.type == "cuda" else 10)
    warmup = args.warmup or (5 if device.type == "cuda" else 2)
    rows = [r for r in load_rows(args) if args.filter in r["name"]]
    peaks = measure_peaks(device)
    print("torch %s on %s (cuDNN TF32 for f32 convs: %s): copy %.1f GB/s, GEMM %s" % (
        torch.__version__, args.device, "n/a" if device.type == "cpu" else "off" if args.no_tf32 else "on (torch default)",
        peaks["copy_gbps"],
        ", ".join("%s %.2f TFLOP/s" % (k, v) for k, v in peaks.items() if k != "copy_gbps")))
    out = open(args.json, "w") if args.json else None
    print("%-44s %-4s %-32s %11s %11s %9s %8s %6s" % (
        "name", "type", "shape", "median_us", "min_us", "GB/s", "TFLOP/s", "%peak"))
    for spec in rows:
        rec = {"name": spec["name"], "device": "torch-" + args.device, "dtype": spec["dtype"],
               "shape": spec["shape"], "median_us": None, "min_us": None, "gbps": 0.0,
               "tflops": 0.0, "pct_peak": 0.0, "validated": False, "status": "reference"}
        try:
            b = Bench(device, DTYPES[spec["dtype"]])
            fn, tensors = build(spec, b)
            fns = [fn]
            for _ in range(rotation_sets(device, working_set(tensors)) - 1):
                fns.append(build(spec, b)[0])
            med, mn = time_fn(device, fns, warmup, repeats)
            rec["median_us"], rec["min_us"] = med, mn
            if spec["bytes"]:
                rec["gbps"] = spec["bytes"] / (med * 1e3)
                rec["pct_peak"] = 100.0 * rec["gbps"] / peaks["copy_gbps"]
            if spec["flops"]:
                rec["tflops"] = spec["flops"] / (med * 1e6)
                peak = peaks.get(spec["dtype"], 0.0)
                rec["pct_peak"] = 100.0 * rec["tflops"] / peak if peak else 0.0
            print("%-44s %-4s %-32s %11.1f %11.1f %9.1f %8.3f %6.1f" % (
                spec["name"], spec["dtype"], spec["shape"], med, mn, rec["gbps"], rec["tflops"],
                rec["pct_peak"]), flush=True)
        except (RuntimeError, ValueError) as e:
            rec["status"] = "FAIL: %s" % str(e).splitlines()[0]
            print("%-44s %-4s %s" % (spec["name"], spec["dtype"], rec["status"]), flush=True)
        if out:
            out.write(json.dumps(rec) + "\n")
            out.flush()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
