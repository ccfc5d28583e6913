"""Convert YOLOv5 weights between the reference's PyTorch checkpoints and yolocore's safetensors files.

  pt2st: a reference checkpoint (.pt as ultralytics/yolov5's train.py saves it: a dict whose 'ema' /
         'model' entries are pickled FP16 Model objects; released weights are such files after
         strip_optimizer) -> safetensors with the float32 state_dict under the reference names
         (conv weights OIHW, num_batches_tracked int64, model.<detect>.anchors in grid units) and
         metadata nc, names (JSON list), yaml (the model's yaml dict as YAML text), stride (JSON list).
         Like the reference's attempt_load, 'ema' is used when present, else 'model' (--key overrides).
  st2pt: such a safetensors file -> a .pt holding a float32 state_dict that a reference Model built
         from the yaml loads with load_state_dict(strict=True); with --checkpoint, a dict in the
         layout of a stripped reference checkpoint (model = FP16 Model object with names/nc/stride,
         ema/optimizer None, epoch -1), which the reference's detect.py and val.py accept.

Unpickling a reference checkpoint and building a reference Model need the reference source
(ultralytics/yolov5 at 48a85314, outside this repository): --ref PATH or YOLO_REF=PATH. Runs with the
Python that has torch + safetensors (here: /work/venv-ref/bin/python).

    python tools/convert_weights.py pt2st yolov5n.pt yolov5n.safetensors --ref /work/ref-yolov5
    python tools/convert_weights.py st2pt yolov5n.safetensors yolov5n_sd.pt --ref /work/ref-yolov5
    python tools/convert_weights.py st2pt yolov5n.safetensors yolov5n_ckpt.pt --checkpoint --ref /work/ref-yolov5
"""

import argparse
import json
import shlex
import sys
from copy import deepcopy
from datetime import datetime
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "parity"))
import reference  # noqa: E402
from safetensors_io import save_sorted  # noqa: E402


def yaml_text(d):
    """The model yaml dict as YAML text in the ultralytics layout (one backbone/head row per line)."""
    def flow(v):
        return yaml.safe_dump(v, default_flow_style=True, width=1 << 30).strip()
    lines = []
    for k, v in d.items():
        if k in ("backbone", "head") and isinstance(v, list):
            lines.append(f"{k}:")
            rows = [flow(r) for r in v]
            lines += [("  [" if i == 0 else "   ") + r + ("]" if i == len(rows) - 1 else ",")
                      for i, r in enumerate(rows)]
        elif k == "anchors" and isinstance(v, list):
            lines.append(f"{k}:")
            lines += [f"  - {flow(a)}" for a in v]
        else:
            lines.append(yaml.safe_dump({k: v}, default_flow_style=True, width=1 << 30).strip()[1:-1])
    text = "\n".join(lines) + "\n"
    if yaml.safe_load(text) != d:
        raise RuntimeError("internal error: the emitted yaml text does not load back to the model's yaml dict")
    return text


def names_list(names, nc):
    if isinstance(names, dict):  # later reference versions keep names as {index: name}
        return [str(names[i]) for i in range(nc)]
    return [str(n) for n in names]


def pt_to_safetensors(args):
    ref = reference.load(args.ref)
    reference.quiet(ref)
    ckpt = torch.load(args.input, map_location="cpu")
    if isinstance(ckpt, dict) and ("model" in ckpt or "ema" in ckpt):
        key = args.key or ("ema" if ckpt.get("ema") is not None else "model")
        model = ckpt.get(key)
        if model is None:
            raise SystemExit(f"{args.input}: checkpoint entry '{key}' is empty")
    elif isinstance(ckpt, torch.nn.Module):
        key, model = "(module)", ckpt
    else:
        raise SystemExit(f"{args.input}: not a reference checkpoint (a dict with 'model'/'ema', or a Model); "
                         f"a bare state_dict carries no yaml: build the safetensors from the Model instead")
    if not hasattr(model, "yaml"):
        raise SystemExit(f"{args.input}: the '{key}' object has no .yaml; is this a YOLOv5 detection model?")
    if any(n.endswith("conv.bias") for n, _ in model.named_parameters()) and not any(
            n.endswith("bn.weight") for n, _ in model.named_parameters()):
        raise SystemExit(f"{args.input}: the model is fused (conv biases, no BatchNorm); convert an unfused checkpoint")

    model = model.float()
    det = model.model[-1]
    nc = int(det.nc)
    tensors = {}
    for name, t in model.state_dict().items():
        t = t.detach().cpu()
        tensors[name] = (t.float() if t.is_floating_point() else t).contiguous()
    names = names_list(getattr(model, "names", [str(i) for i in range(nc)]), nc)
    metadata = {
        "nc": str(nc),
        "names": json.dumps(names),
        "yaml": yaml_text(model.yaml),
        "stride": json.dumps([int(s) for s in det.stride.tolist()]),
        "source": f"{Path(args.input).name} ['{key}']",
        "command": shlex.join(["python", "tools/convert_weights.py", *sys.argv[1:]]),
    }
    save_sorted(tensors, args.output, metadata=metadata)
    print(f"wrote {args.output}: {len(tensors)} tensors from {args.input}['{key}'], nc {nc}")


def model_from_safetensors(ref, path, cfg=None):
    """A float32 reference Model built from the file's yaml (or cfg) with the file's tensors loaded strictly."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    if cfg:
        model_yaml = yaml.safe_load(Path(cfg).read_text(encoding="ascii", errors="ignore"))
    elif "yaml" in meta:
        model_yaml = yaml.safe_load(meta["yaml"])
    else:
        raise SystemExit(f"{path}: no 'yaml' in the metadata; give the model yaml with --cfg")
    model = ref.Model(deepcopy(model_yaml))
    tensors = load_file(path)
    missing = sorted(set(model.state_dict()) - set(tensors))
    unexpected = sorted(set(tensors) - set(model.state_dict()))
    bad = sorted(k for k, v in model.state_dict().items() if k in tensors and tuple(v.shape) != tuple(tensors[k].shape))
    if missing or unexpected or bad:
        raise SystemExit(f"{path} does not match the model: missing {missing}, unexpected {unexpected}, "
                         f"shape mismatch {[(k, tuple(tensors[k].shape), tuple(model.state_dict()[k].shape)) for k in bad]}")
    model.load_state_dict(tensors, strict=True)
    nc = int(model.model[-1].nc)
    model.nc = nc
    model.names = json.loads(meta["names"]) if "names" in meta else [str(i) for i in range(nc)]
    return model


def safetensors_to_pt(args):
    ref = reference.load(args.ref)
    reference.quiet(ref)
    model = model_from_safetensors(ref, args.input, args.cfg)
    if args.checkpoint:
        m = deepcopy(model).half()
        for p in m.parameters():
            p.requires_grad = False
        obj = {"epoch": -1, "best_fitness": None, "model": m, "ema": None, "updates": None, "optimizer": None,
               "wandb_id": None, "opt": None, "date": datetime.now().isoformat()}
    else:
        obj = {k: v.detach().clone() for k, v in model.state_dict().items()}
    torch.save(obj, args.output)
    print(f"wrote {args.output}: {'checkpoint (FP16 Model)' if args.checkpoint else 'float32 state_dict'} "
          f"from {args.input}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pt2st", help="reference checkpoint .pt -> safetensors")
    a.add_argument("input")
    a.add_argument("output")
    a.add_argument("--key", choices=["ema", "model"], help="checkpoint entry to convert (default: ema if present)")
    a.add_argument("--ref", help="ultralytics/yolov5 checkout; default $YOLO_REF")
    a.set_defaults(fn=pt_to_safetensors)
    b = sub.add_parser("st2pt", help="safetensors -> reference state_dict (or checkpoint) .pt")
    b.add_argument("input")
    b.add_argument("output")
    b.add_argument("--cfg", help="model yaml to build (default: the yaml in the file's metadata)")
    b.add_argument("--checkpoint", action="store_true", help="write a stripped reference checkpoint dict")
    b.add_argument("--ref", help="ultralytics/yolov5 checkout; default $YOLO_REF")
    b.set_defaults(fn=safetensors_to_pt)
    args = ap.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
