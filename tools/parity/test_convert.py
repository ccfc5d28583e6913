"""Round-trip test of tools/convert_weights.py against the reference (run by hand; not part of CI).

Builds a reference yolov5n (and the tiny fixture model, nc 3 with names), perturbs its BN statistics,
runs one SGD step and an EMA update so that 'model' and 'ema' differ, and saves a checkpoint the way
the reference's train.py does (dict: epoch, best_fitness, model=deepcopy(model).half(),
ema=deepcopy(ema.ema).half(), updates, optimizer state, wandb_id, opt, date); a second copy goes
through the reference's own strip_optimizer (the layout of released weights). Then, per checkpoint:
  pt2st -> safetensors: every tensor equals the checkpoint's (ema) state_dict in float32, metadata right;
  st2pt -> state_dict .pt: a fresh reference Model from the yaml loads it with strict=True and its
           eval outputs equal those of the checkpoint's model (float) exactly;
  st2pt --checkpoint -> the reference's attempt_load reads it, and its fused output matches.
Finally the reference's own train.py (run through reference.py's shims) trains the tiny model for one
epoch on 8 synthetic 64x64 images (3 classes) and its weights/last.pt goes through the same checks.

    /work/venv-ref/bin/python tools/parity/test_convert.py --ref /work/ref-yolov5
"""

import argparse
import json
import subprocess
import sys
import tempfile
from copy import deepcopy
from datetime import datetime
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CONVERT = REPO / "tools" / "convert_weights.py"


def convert(ref_root, *argv):
    cmd = [sys.executable, str(CONVERT), *argv, "--ref", str(ref_root)]
    print("  $", " ".join(cmd[1:]))
    subprocess.run(cmd, check=True)


def trained_checkpoint(ref, cfg, names):
    """A reference model after one SGD step + EMA update, and the train.py-style checkpoint dict."""
    from utils.torch_utils import ModelEMA, de_parallel
    model = ref.Model(str(cfg))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    model.names = names
    model.nc = len(names)
    ema = ModelEMA(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.937, nesterov=True)
    model.train()
    outs = model(torch.rand(2, 3, 64, 64))
    sum((o * o).mean() for o in outs).backward()
    opt.step()
    ema.update(model)
    ema.update_attr(model, include=["yaml", "nc", "hyp", "names", "stride", "class_weights"])
    ckpt = {
        "epoch": 0,
        "best_fitness": 0.0,
        "model": deepcopy(de_parallel(model)).half(),
        "ema": deepcopy(ema.ema).half(),
        "updates": ema.updates,
        "optimizer": opt.state_dict(),
        "wandb_id": None,
        "opt": {"cfg": str(cfg)},
        "date": datetime.now().isoformat(),
    }
    return ckpt


TRAIN_WRAPPER = """import runpy, sys
sys.path.insert(0, {parity!r})
import reference
ref = reference.load({ref!r})
sys.argv = ['train.py', *sys.argv[1:]]
runpy.run_path(str(ref.root / 'train.py'), run_name='__main__')
"""


def reference_train_py(ref, tmp):
    """Run the reference train.py for one epoch on a synthetic dataset; returns its weights/last.pt."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(0)
    data = tmp / "data"
    (data / "images").mkdir(parents=True)
    (data / "labels").mkdir(parents=True)
    colors = [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    for i in range(8):
        img = np.full((64, 64, 3), 114, np.uint8)
        rows = []
        for _ in range(2):
            c = int(rng.integers(0, 3))
            w, h = (int(v) for v in rng.integers(10, 30, 2))
            x, y = (int(v) for v in rng.integers(0, 34, 2))
            cv2.rectangle(img, (x, y), (x + w, y + h), colors[c], -1)
            rows.append(f"{c} {(x + w / 2) / 64:.6f} {(y + h / 2) / 64:.6f} {w / 64:.6f} {h / 64:.6f}")
        cv2.imwrite(str(data / "images" / f"{i}.jpg"), img)
        (data / "labels" / f"{i}.txt").write_text("\n".join(rows) + "\n")
    (tmp / "data.yaml").write_text(f"path: {data}\ntrain: images\nval: images\nnc: 3\nnames: ['red', 'green', 'blue']\n")
    wrapper = tmp / "run_train.py"
    wrapper.write_text(TRAIN_WRAPPER.format(parity=str(Path(__file__).resolve().parent), ref=str(ref.root)))
    cmd = [sys.executable, str(wrapper), "--data", str(tmp / "data.yaml"),
           "--cfg", str(REPO / "tests" / "fixtures" / "yolov5-tiny.yaml"), "--weights", "", "--img", "64",
           "--batch", "4", "--epochs", "1", "--workers", "0", "--device", "cpu", "--noplots",
           "--project", str(tmp / "runs"), "--name", "t", "--exist-ok"]
    print("  $ train.py", " ".join(cmd[2:]))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp)
    return tmp / "runs" / "t" / "weights" / "last.pt"


def eval_out(model, x):
    model.eval()
    with torch.no_grad():
        return model(x.clone())[0]


def check_case(ref, tmp, tag, ckpt_path, expect_key):
    from safetensors import safe_open
    from safetensors.torch import load_file
    from models.experimental import attempt_load

    ckpt = torch.load(ckpt_path, map_location="cpu")
    src = ckpt[expect_key].float()
    src_sd = src.state_dict()
    st = tmp / f"{tag}.safetensors"
    sd_pt = tmp / f"{tag}_sd.pt"
    ck_pt = tmp / f"{tag}_ckpt.pt"
    convert(ref.root, "pt2st", str(ckpt_path), str(st))
    convert(ref.root, "st2pt", str(st), str(sd_pt))
    convert(ref.root, "st2pt", str(st), str(ck_pt), "--checkpoint")

    tensors = load_file(str(st))
    assert set(tensors) == set(src_sd), "safetensors keys differ from the checkpoint's state_dict"
    for k, v in src_sd.items():
        want = v.float() if v.is_floating_point() else v
        assert tensors[k].dtype == want.dtype and torch.equal(tensors[k], want), f"tensor {k} differs"
    with safe_open(str(st), "pt") as f:
        meta = f.metadata()
    assert int(meta["nc"]) == src.nc and json.loads(meta["names"]) == list(src.names)
    assert json.loads(meta["stride"]) == [int(s) for s in src.stride.tolist()]

    fresh = ref.Model(deepcopy(src.yaml))
    fresh.load_state_dict(torch.load(sd_pt, map_location="cpu"), strict=True)
    x = torch.rand(2, 3, 96, 128)
    a, b = eval_out(src, x), eval_out(fresh, x)
    assert torch.equal(a, b), f"outputs differ: max |d| {(a - b).abs().max().item()}"

    loaded = attempt_load(str(ck_pt), device="cpu")
    fused_src = deepcopy(src).fuse()
    c, d = eval_out(fused_src, x), eval_out(loaded, x)
    assert torch.equal(c, d), f"attempt_load output differs: max |d| {(c - d).abs().max().item()}"
    assert list(loaded.names) == list(src.names)
    print(f"  ok: {len(tensors)} tensors equal, strict load, eval output {tuple(a.shape)} identical, "
          f"attempt_load of the --checkpoint file identical")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="ultralytics/yolov5 checkout (commit 48a85314); default $YOLO_REF")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    ref = reference.load(args.ref)
    reference.quiet(ref)
    from utils.general import strip_optimizer

    cases = [("yolov5n", REPO / "configs" / "yolov5n.yaml", [f"class{i}" for i in range(80)]),
             ("tiny", REPO / "tests" / "fixtures" / "yolov5-tiny.yaml", ["cat", "dog", "traffic light"])]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for tag, cfg, names in cases:
            last = tmp / f"{tag}_last.pt"
            torch.save(trained_checkpoint(ref, cfg, names), last)
            print(f"{tag}: train.py-style checkpoint (model + ema)")
            check_case(ref, tmp, f"{tag}_last", last, "ema")
            stripped = tmp / f"{tag}_stripped.pt"
            strip_optimizer(str(last), str(stripped))
            print(f"{tag}: after the reference's strip_optimizer")
            check_case(ref, tmp, f"{tag}_stripped", stripped, "model")
        print("reference train.py, 1 epoch, tiny model, synthetic data: weights/last.pt")
        last = reference_train_py(ref, tmp)
        assert torch.load(last, map_location="cpu")["model"].names == ["red", "green", "blue"]
        check_case(ref, tmp, "trainpy_last", last, "model")
    print("all conversions round-trip")


if __name__ == "__main__":
    main()
