#!/usr/bin/env python3
"""Merges yolo_bench JSON lines with tools/bench_torch_ops.py JSON lines into one compact table.

    python3 tools/bench_table.py ours.jsonl torch.jsonl [--markdown]

Rows are matched on (name, dtype). Columns: name | dtype | shape | ours µs | torch µs |
torch/ours (speed ratio, > 1 means we are faster) | ours GB/s or TFLOP/s | ours % of the measured
peak | status. Ends with the geometric-mean speed ratio per op. Not part of the product.
"""
import argparse
import json
import math
import sys
from collections import defaultdict


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ours", help="yolo_bench --json output")
    ap.add_argument("torch", nargs="?", help="bench_torch_ops.py --json output (optional)")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()

    ours = load(args.ours)
    theirs = {(r["name"], r["dtype"]): r for r in load(args.torch)} if args.torch else {}
    header = ["name", "dtype", "shape", "ours us", "torch us", "torch/ours", "GB/s|TFLOP/s",
              "% peak", "status"]
    # Device memory high-water marks (whole-model rows on CUDA), when the rows carry them.
    memory = any(r.get("peak_mib") for r in ours)
    if memory:
        header[-1:-1] = ["ours MiB", "torch MiB"]
    table = []
    ratios = defaultdict(list)
    for r in ours:
        t = theirs.get((r["name"], r["dtype"]))
        ok = r.get("status", "ok") == "ok"
        our_us = r.get("median_us") if ok else None
        torch_us = t.get("median_us") if t else None
        ratio = torch_us / our_us if our_us and torch_us else None
        if ratio:
            ratios[r["name"].split("/")[0] + " " + r["dtype"]].append(ratio)
        rate = ("%.1f GB/s" % r["gbps"]) if r.get("gbps") else (
            "%.2f TF/s" % r["tflops"] if r.get("tflops") else "")
        row = [
            r["name"], r["dtype"], r["shape"],
            "%.1f" % our_us if our_us else "-",
            "%.1f" % torch_us if torch_us else "-",
            "%.2fx" % ratio if ratio else "-",
            rate if ok else "",
            "%.0f%%" % r["pct_peak"] if ok and r.get("pct_peak") else "",
            "ok" if ok else r.get("status", "")[:60],
        ]
        if memory:
            row[-1:-1] = ["%.0f" % r["peak_mib"] if r.get("peak_mib") else "-",
                          "%.0f" % t["peak_mib"] if t and t.get("peak_mib") else "-"]
        table.append(row)
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in table:
            print("| " + " | ".join(row) + " |")
    else:
        widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h)
                  for i, h in enumerate(header)]
        widths[-1] = len(header[-1])
        print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        for row in table:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    if ratios:
        print("\ngeometric-mean torch/ours speed ratio per op (> 1: ours faster):")
        for op in sorted(ratios):
            v = ratios[op]
            gm = math.exp(sum(math.log(x) for x in v) / len(v))
            print("  %-32s %6.2fx over %d rows" % (op, gm, len(v)))
    # Memory-bound rows: the range of our % of copy bandwidth per op and dtype (the target is 70%).
    spans = defaultdict(list)
    for r in ours:
        if r.get("status", "ok") == "ok" and r.get("gbps") and r.get("pct_peak"):
            spans[r["name"].split("/")[0] + " " + r["dtype"]].append(r["pct_peak"])
    if spans:
        print("\n% of measured copy bandwidth per memory-bound op (min-max over rows):")
        for op in sorted(spans):
            v = spans[op]
            print("  %-32s %3.0f-%3.0f%% over %d rows" % (op, min(v), max(v), len(v)))
    failed = sum(1 for r in ours if r.get("status", "ok") != "ok")
    if failed:
        print("\n%d of our rows failed (see status)" % failed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
