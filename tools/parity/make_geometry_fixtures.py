"""Write tests/fixtures/geometry.json: the reference data pipeline's deterministic geometry.

    /work/venv-ref/bin/python tools/parity/make_geometry_fixtures.py --ref /work/ref-yolov5

Every number comes from the reference's own code (ultralytics/yolov5@48a85314) run on synthetic
inputs from a fixed seed: LoadImagesAndLabels.load_image (on a zero image written to a temporary
PNG; the interpolation is read by wrapping cv2.resize), utils.augmentations.letterbox (on a zero
image: the 114 border rows/columns give top/bottom/left/right), utils.general.xywhn2xyxy and
xyxy2xywhn on float32 label arrays as __getitem__ passes them, and the rect batch shapes and sort
order of LoadImagesAndLabels(rect=True) built over a temporary dataset of zero PNGs of the listed
sizes. Rerunning gives the same bytes.
"""

import argparse
import json
import random
import sys
import tempfile
import types
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
INTERP = {cv2.INTER_LINEAR: "linear", cv2.INTER_AREA: "area"}


def f32_list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def load_image_cases(dl, tmp, rng):
    sizes = [(480, 640, 640), (640, 480, 640), (640, 640, 640), (333, 517, 640), (1080, 1920, 640),
             (17, 23, 640), (719, 3, 320), (100, 1000, 256), (427, 640, 320), (999, 1001, 640)]
    sizes += [(rng.randint(10, 1500), rng.randint(10, 1500), rng.choice([256, 320, 416, 640, 1280]))
              for _ in range(30)]
    calls = []
    real_resize = cv2.resize

    def spy(im, size, interpolation=None):
        calls.append(interpolation)
        return real_resize(im, size, interpolation=interpolation)

    out = []
    cv2.resize = spy
    try:
        for k, (h0, w0, img_size) in enumerate(sizes):
            f = tmp / f"load_{k}.png"
            cv2.imwrite(str(f), np.zeros((h0, w0, 3), np.uint8))
            for augment in (False, True):
                fake = types.SimpleNamespace(ims=[None], im_files=[str(f)], npy_files=[tmp / "absent.npy"],
                                             img_size=img_size, augment=augment)
                calls.clear()
                _, hw0, hw = dl.LoadImagesAndLabels.load_image(fake, 0)
                assert tuple(hw0) == (h0, w0)
                out.append({"h0": h0, "w0": w0, "img_size": img_size, "augment": augment, "h": int(hw[0]),
                            "w": int(hw[1]), "interp": INTERP[calls[0]] if calls else "none"})
    finally:
        cv2.resize = real_resize
    return out


def letterbox_cases(aug, gen, rng, nprng):
    fixed = [(480, 640, 640, 640), (640, 480, 640, 640), (720, 1280, 640, 640), (333, 517, 640, 640),
             (512, 384, 416, 352), (17, 23, 640, 640), (3, 719, 320, 320), (427, 640, 672, 512),
             (641, 639, 640, 640), (99, 101, 96, 128)]
    shapes = fixed + [(rng.randint(20, 1400), rng.randint(20, 1400), rng.choice([96, 128, 256, 320, 640, 672]),
                       rng.choice([96, 128, 256, 320, 640, 672])) for _ in range(40)]
    out = []
    for k, (h, w, nh, nw) in enumerate(shapes):
        im = np.zeros((h, w, 3), np.uint8)
        for auto, scale_fill, scaleup, stride in [(True, False, True, 32), (False, False, True, 32),
                                                   (False, True, True, 32), (False, False, False, 32),
                                                   (True, False, False, 64), (True, False, True, 64),
                                                   (True, True, True, 32), (False, True, False, 64)]:
            res, ratio, (dw, dh) = aug.letterbox(im, (nh, nw), auto=auto, scaleFill=scale_fill, scaleup=scaleup,
                                                 stride=stride)
            content = (res[:, :, 0] == 0)
            rows, cols = np.nonzero(content.any(1))[0], np.nonzero(content.any(0))[0]
            top, bottom = int(rows[0]), int(res.shape[0] - 1 - rows[-1])
            left, right = int(cols[0]), int(res.shape[1] - 1 - cols[-1])
            case = {"h": h, "w": w, "new_h": nh, "new_w": nw, "auto": auto, "scale_fill": scale_fill,
                    "scaleup": scaleup, "stride": stride, "ratio": [float(ratio[0]), float(ratio[1])],
                    "dw": float(dw), "dh": float(dh), "unpad_w": int(cols[-1] - cols[0] + 1),
                    "unpad_h": int(rows[-1] - rows[0] + 1), "top": top, "bottom": bottom, "left": left,
                    "right": right, "out_h": int(res.shape[0]), "out_w": int(res.shape[1])}
            if k % 4 == 0:  # labels through __getitem__'s two conversions for this letterbox
                n = int(nprng.integers(1, 7))
                xy = nprng.uniform(-0.1, 1.1, (n, 2))
                wh = nprng.uniform(0.0, 0.8, (n, 2))
                labels = np.concatenate([xy, wh], 1).astype(np.float32)
                xyxy = gen.xywhn2xyxy(labels, ratio[0] * w, ratio[1] * h, padw=dw, padh=dh)
                back_in = xyxy.copy()
                xywhn = gen.xyxy2xywhn(back_in, w=res.shape[1], h=res.shape[0], clip=True, eps=1e-3)
                case["labels"] = {"w": w, "h": h, "xywhn": f32_list(labels), "xyxy": f32_list(xyxy),
                                  "clip": True, "eps": 1e-3, "back": f32_list(xywhn)}
                noclip = gen.xyxy2xywhn(xyxy.copy(), w=res.shape[1], h=res.shape[0], clip=False, eps=0.0)
                case["labels"]["back_noclip"] = f32_list(noclip)
            out.append(case)
    return out


def make_dataset(tmp, name, sizes_wh):
    root = tmp / name
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for k, (w, h) in enumerate(sizes_wh):
        cv2.imwrite(str(root / "images" / f"{k:03d}.png"), np.zeros((h, w, 3), np.uint8))
        (root / "labels" / f"{k:03d}.txt").write_text("0 0.5 0.5 0.25 0.25\n")
    return root / "images"


def rect_cases(dl, tmp, rng):
    lists = {
        "random37": [(rng.randint(16, 1400), rng.randint(16, 1400)) for _ in range(37)],
        "ties37": [rng.choice([(640, 480), (480, 640), (500, 500), (1280, 720), (333, 517)]) for _ in range(37)],
        "ties300": [rng.choice([(640, 480), (480, 640), (500, 500), (1280, 720)]) for _ in range(300)],
    }
    out = []
    for name, sizes in lists.items():
        images = make_dataset(tmp, name, sizes)
        for img_size, stride in [(640, 32), (320, 32), (640, 64)]:
            for batch in (8, 16):
                for pad in (0.5, 0.0):
                    if name == "ties300" and (img_size, stride, pad) != (640, 32, 0.5):
                        continue
                    ds = dl.LoadImagesAndLabels(str(images), img_size, batch, augment=False, rect=True,
                                                stride=stride, pad=pad, prefix="")
                    order = [int(Path(f).stem) for f in ds.im_files]
                    ars = [h / w for (w, h) in sizes]
                    ties = len(set(ars)) != len(ars)
                    out.append({"list": name, "shapes_wh": [list(s) for s in sizes], "img_size": img_size,
                                "stride": stride, "batch_size": batch, "pad": pad, "ties": ties,
                                "order": order, "batch_shapes": [[int(a), int(b)] for a, b in ds.batch_shapes]})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="ultralytics/yolov5 checkout at 48a85314 (default: $YOLO_REF)")
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "geometry.json"))
    args = ap.parse_args()
    ref = reference.load(args.ref)
    reference.quiet(ref)
    import utils.augmentations as aug
    import utils.dataloaders as dl
    import utils.general as gen
    dl.LOGGER.setLevel(40)

    rng = random.Random(0)
    nprng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        doc = {
            "reference": "ultralytics/yolov5@48a85314",
            "command": "/work/venv-ref/bin/python tools/parity/make_geometry_fixtures.py --ref /work/ref-yolov5",
            "load_image": load_image_cases(dl, tmp, rng),
            "letterbox": letterbox_cases(aug, gen, rng, nprng),
            "rect": rect_cases(dl, tmp, rng),
        }
    Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{args.out}: {len(doc['load_image'])} load_image, {len(doc['letterbox'])} letterbox, "
          f"{len(doc['rect'])} rect cases")


if __name__ == "__main__":
    main()
