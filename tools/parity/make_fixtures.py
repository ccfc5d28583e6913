"""Write the parity fixtures the C++ model tests compare against, by running the reference on the CPU.

One safetensors file per case (format: the "Fixture format" section of tests/fixtures/README.md):
the reference model's state_dict under its own names, an input batch, the eval-mode decoded output
(computed first), the training-mode outputs per level, fixed random coefficients c_i, the gradients of
L = sum_i sum(train.out.i * c_i) with respect to every parameter and the input, and the BN running
statistics after that training-mode forward. Everything is float32 (num_batches_tracked int64).

    /work/venv-ref/bin/python tools/parity/make_fixtures.py --ref /work/ref-yolov5 --case tiny
    /work/venv-ref/bin/python tools/parity/make_fixtures.py --ref /work/ref-yolov5 --case yolov5n
    (or --cfg FILE --batch N --img S --out FILE for any other model; --check-f64 also reports how far
     the reference's own float32 numbers are from a float64 run of the same weights and input)
"""

import argparse
import copy
import json
import shlex
import sys
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402
from safetensors_io import save_sorted  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

CASES = {
    "tiny": dict(cfg="tests/fixtures/yolov5-tiny.yaml", batch=2, img=128, out="tests/fixtures/parity_tiny.safetensors"),
    "yolov5n": dict(cfg="configs/yolov5n.yaml", batch=1, img=128, out="tests/fixtures/parity_yolov5n.safetensors"),
}


def reference_id(ref):
    if ref.commit:
        return f"ultralytics/yolov5@{ref.commit[:8]}"
    return f"ultralytics/yolov5 source at {ref.root} (no git HEAD found)"


def perturb(model):
    """Make BN and the Detect biases non-trivial; draws from the global torch RNG in module order."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = 0.03
                m.eps = 1e-3
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
        for conv in model.model[-1].m:
            conv.bias.add_(torch.empty_like(conv.bias).uniform_(-0.5, 0.5))


def run_case(model, image, coefs=None):
    """Eval-mode forward first, then a train-mode forward + backward. Returns a dict of results."""
    model.eval()
    with torch.no_grad():
        eval_out = model(image.clone())[0]

    model.train()
    x = image.clone().requires_grad_(True)
    outs = model(x)
    if coefs is None:
        coefs = [torch.randn(o.shape, dtype=o.dtype) for o in outs]
    loss = sum((o * c).sum() for o, c in zip(outs, coefs))
    model.zero_grad(set_to_none=True)
    loss.backward()

    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    after = {n: b.detach().clone() for n, b in model.named_buffers() if n.endswith(("running_mean", "running_var"))}
    return dict(eval_out=eval_out.detach(), outs=[o.detach() for o in outs], coefs=coefs, loss=loss.item(),
                grads=grads, grad_input=x.grad.detach().clone(), after=after)


def to_float32(res):
    f = lambda t: t.float() if t.is_floating_point() else t
    return dict(eval_out=f(res["eval_out"]), outs=[f(o) for o in res["outs"]], coefs=[f(c) for c in res["coefs"]],
                loss=res["loss"], grads={n: f(g) for n, g in res["grads"].items()}, grad_input=f(res["grad_input"]),
                after={n: f(b) for n, b in res["after"].items()})


def max_errors(a, b):
    """(max |a-b|, max |a-b| / max|b|, ||a-b||_2 / ||b||_2) for tensors a (test) and b (truth)."""
    diff = a.double() - b.double()
    d = diff.abs().max().item()
    scale = b.double().abs().max().item()
    norm = b.double().norm().item()
    return d, d / scale if scale > 0 else d, diff.norm().item() / norm if norm > 0 else diff.norm().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="ultralytics/yolov5 checkout (commit 48a85314); default $YOLO_REF")
    ap.add_argument("--case", choices=sorted(CASES), help="a preset: cfg, batch, img and out")
    ap.add_argument("--cfg", help="model yaml (relative to the repository root or absolute)")
    ap.add_argument("--batch", type=int)
    ap.add_argument("--img", type=int)
    ap.add_argument("--out", help="output .safetensors")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compute", choices=["float32", "float64"], default="float64",
                    help="dtype the reference computes in; results are stored as float32 either way")
    ap.add_argument("--check-f64", action="store_true",
                    help="also run the same weights/input in float64 and print the float32 errors (not saved)")
    args = ap.parse_args()

    preset = CASES.get(args.case, {})
    cfg = args.cfg or preset.get("cfg")
    batch = args.batch or preset.get("batch")
    img = args.img or preset.get("img")
    out = args.out or preset.get("out")
    if not (cfg and batch and img and out):
        ap.error("give --case or all of --cfg --batch --img --out")
    cfg_path = Path(cfg) if Path(cfg).is_absolute() else REPO / cfg
    out_path = Path(out) if Path(out).is_absolute() else REPO / out

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.set_default_dtype(torch.float32)
    torch.manual_seed(args.seed)

    ref = reference.load(args.ref)
    reference.quiet(ref)
    yaml_text = cfg_path.read_text(encoding="ascii")
    model = ref.Model(str(cfg_path)).float()
    perturb(model)
    image = torch.rand(batch, 3, img, img)

    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model64 = copy.deepcopy(model).double() if args.check_f64 or args.compute == "float64" else None
    if args.compute == "float64":
        res = to_float32(run_case(model64, image.double()))
    else:
        res = run_case(model, image)

    det = model.model[-1]
    tensors = {k: v.contiguous() for k, v in state.items()}
    tensors["input"] = image.contiguous()
    tensors["eval.out"] = res["eval_out"].contiguous()
    for i, (o, c) in enumerate(zip(res["outs"], res["coefs"])):
        tensors[f"train.out.{i}"] = o.contiguous()
        tensors[f"train.coef.{i}"] = c.contiguous()
    for n, g in res["grads"].items():
        tensors[f"grad.{n}"] = g.contiguous()
    tensors["grad.input"] = res["grad_input"].contiguous()
    for n, b in res["after"].items():
        tensors[f"after.{n}"] = b.contiguous()
    for k, v in tensors.items():
        if v.is_floating_point() and v.dtype != torch.float32:
            raise SystemExit(f"{k} is {v.dtype}, expected float32")

    import safetensors
    argv = [a if not a.startswith(str(REPO) + "/") else a[len(str(REPO)) + 1:] for a in sys.argv]
    command = shlex.join([sys.executable, str(Path(argv[0]).relative_to(REPO)) if Path(argv[0]).is_absolute()
                          else argv[0], *argv[1:]])
    metadata = {
        "yaml": yaml_text,
        "command": command,
        "reference": reference_id(ref),
        "img": str(img),
        "batch": str(batch),
        "seed": str(args.seed),
        "nc": str(det.nc),
        "stride": json.dumps([int(s) for s in det.stride.tolist()]),
        "loss": repr(res["loss"]),
        "compute": args.compute,
        "torch": torch.__version__,
        "safetensors": safetensors.__version__,
        "bn": "momentum 0.03, eps 1e-3; weight U(0.5,1.5), bias U(-0.5,0.5), running_mean U(-0.2,0.2), "
              "running_var U(0.5,2); Detect biases += U(-0.5,0.5)",
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_sorted(tensors, str(out_path), metadata=metadata)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"wrote {out_path} ({out_path.stat().st_size} bytes): {len(tensors)} tensors, {n_params} parameters, "
          f"L = {res['loss']!r}, eval.out {tuple(res['eval_out'].shape)}, "
          f"train.out {[tuple(o.shape) for o in res['outs']]}")

    if args.check_f64 and args.compute == "float32":
        r64 = run_case(model64, image.double(), [c.double() for c in res["coefs"]])
        rows = [("eval.out", res["eval_out"], r64["eval_out"])]
        rows += [(f"train.out.{i}", a, b) for i, (a, b) in enumerate(zip(res["outs"], r64["outs"]))]
        rows += [("grad.input", res["grad_input"], r64["grad_input"])]
        rows += [(f"grad.{n}", res["grads"][n], r64["grads"][n]) for n in res["grads"]]
        rows += [(f"after.{n}", res["after"][n], r64["after"][n]) for n in res["after"]]
        errs = [(name, *max_errors(a, b)) for name, a, b in rows]
        print("float32 reference vs float64 run: max|d|, max|d|/max|truth|, ||d||/||truth|| (worst tensor per group)")
        for group in ("eval.out", "train.out", "grad.input", "grad.model", "after."):
            sel = [e for e in errs if e[0].startswith(group)]
            for k, what in ((2, "max-rel"), (3, "l2-rel")):
                w = max(sel, key=lambda e: e[k])
                print(f"  {group:11s} worst by {what}: {w[1]:.3e} {w[2]:.3e} {w[3]:.3e}  ({w[0]})")


if __name__ == "__main__":
    main()
