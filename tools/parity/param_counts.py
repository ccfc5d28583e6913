"""Write tests/fixtures/param_counts.json: the reference's model_info numbers for the ten standard yamls.

For each of yolov5{n,s,m,l,x} (models/) and yolov5{n6,s6,m6,l6,x6} (models/hub/) of the reference
checkout, builds the reference Model (train mode, as Model.__init__ leaves it), reads the summary
line model_info logs, then calls Model.fuse() and reads it again. Also checks that configs/<name>.yaml
of this repository loads to the same dict as the reference's file.

    /work/venv-ref/bin/python tools/parity/param_counts.py --ref /work/ref-yolov5

Per model: params / fused (parameter counts unfused / fused), layers / fused_layers
(len(list(model.modules()))), gflops / fused_gflops (the "%.1f GFLOPs" model_info prints: thop MACs x2
at a stride x stride zero input, stride = max(model stride, 32), scaled to 640x640), gflops_exact /
fused_gflops_exact (the same figure unrounded), summary / fused_summary (the logged lines, verbatim).
"""

import argparse
import json
import re
import sys
from copy import deepcopy
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
NAMES = ["yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x",
         "yolov5n6", "yolov5s6", "yolov5m6", "yolov5l6", "yolov5x6"]
SUMMARY = re.compile(r"summary: (\d+) layers, (\d+) parameters, (\d+) gradients(?:, ([\d.]+) GFLOPs)?$")


def gflops_exact(model, thop, img_size=640):
    """model_info's GFLOPs formula, without the final rounding."""
    stride = max(int(model.stride.max()), 32)
    img = torch.zeros((1, model.yaml.get("ch", 3), stride, stride))
    flops = thop.profile(deepcopy(model), inputs=(img,), verbose=False)[0] / 1e9 * 2
    return flops * img_size / stride * img_size / stride


def summarize(ref, model, thop):
    with reference.CaptureLog(ref.LOGGER) as log:
        ref.model_info(model)
    line = [s for s in log.lines if "summary:" in s][-1]
    m = SUMMARY.search(line)
    if not m or m.group(4) is None:
        raise SystemExit(f"unexpected model_info line (is thop installed?): {line!r}")
    layers, params = int(m.group(1)), int(m.group(2))
    assert layers == len(list(model.modules())) and params == sum(p.numel() for p in model.parameters())
    exact = gflops_exact(model, thop)
    if f"{exact:.1f}" != m.group(4):
        raise SystemExit(f"recomputed GFLOPs {exact} disagree with the logged {m.group(4)}")
    return dict(layers=layers, params=params, gflops=float(m.group(4)), gflops_exact=round(exact, 6), summary=line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="ultralytics/yolov5 checkout (commit 48a85314); default $YOLO_REF")
    ap.add_argument("--out", default=str(REPO / "tests/fixtures/param_counts.json"))
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ref = reference.load(args.ref)
    reference.quiet(ref)
    import thop

    result = {}
    for name in NAMES:
        src = ref.root / "models" / f"{name}.yaml"
        if not src.is_file():
            src = ref.root / "models" / "hub" / f"{name}.yaml"
        ours = REPO / "configs" / f"{name}.yaml"
        with open(src, encoding="ascii", errors="ignore") as f:
            ref_dict = yaml.safe_load(f)
        if yaml.safe_load(ours.read_text(encoding="ascii")) != ref_dict:
            raise SystemExit(f"{ours} does not load to the same dict as {src}")

        model = ref.Model(str(src))
        unfused = summarize(ref, model, thop)
        model.fuse()
        fused = summarize(ref, model, thop)
        result[name] = dict(params=unfused["params"], fused=fused["params"],
                            layers=unfused["layers"], fused_layers=fused["layers"],
                            gflops=unfused["gflops"], fused_gflops=fused["gflops"],
                            gflops_exact=unfused["gflops_exact"], fused_gflops_exact=fused["gflops_exact"],
                            summary=unfused["summary"], fused_summary=fused["summary"])
        print(f"{name}: {unfused['summary']} | fused: {fused['summary']}")

    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out} (reference {ref.commit}, torch {torch.__version__}, thop {thop.__version__})")


if __name__ == "__main__":
    main()
