"""Write tests/fixtures/augment_labels.json: the label side of the reference's augmentation.

    /work/venv-ref/bin/python tools/parity/make_augment_label_fixtures.py --ref /work/ref-yolov5

Two kinds of case, every number made by the reference's own functions (ultralytics/yolov5@48a85314):
- "perspective": utils.augmentations.random_perspective on a blank image of the listed size with
  float32 targets (class + pixel xyxy) and, for some cases, polygons. The eight random.uniform draws
  it makes are recorded by wrapping random.uniform, the matrix by wrapping cv2.warpAffine /
  cv2.warpPerspective; the output targets are what it returns.
- "mosaic": LoadImagesAndLabels.load_mosaic over a small temporary dataset (images of several sizes,
  box labels, one polygon-labelled image), with the centre and perspective draws, the
  random.choices partners and the shuffled order recorded the same way; the output is its labels4.
A C++ test replays the recorded draws through yolocore's plan and compares the labels. Rerunning
gives the same bytes.
"""

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

HYPS = {
    "low": dict(degrees=0.0, translate=0.1, scale=0.5, shear=0.0, perspective=0.0),
    "heavy": dict(degrees=10.0, translate=0.2, scale=0.9, shear=5.0, perspective=0.0),
    "perspective": dict(degrees=5.0, translate=0.1, scale=0.5, shear=2.0, perspective=0.0005),
    "none": dict(degrees=0.0, translate=0.0, scale=0.0, shear=0.0, perspective=0.0),
}


def f32(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


class Recorder:
    """Wraps random.uniform / random.choices / random.shuffle and cv2's warps while active."""

    def __init__(self):
        self.uniform, self.choices, self.shuffled, self.matrix = [], [], [], None

    def __enter__(self):
        self._saved = (random.uniform, random.choices, random.shuffle, cv2.warpAffine, cv2.warpPerspective)
        real_uniform, real_choices, real_shuffle, real_affine, real_persp = self._saved

        def uniform(a, b):
            v = real_uniform(a, b)
            self.uniform.append(v)
            return v

        def choices(population, k=1):
            out = real_choices(population, k=k)
            self.choices.append([int(x) for x in out])
            return out

        def shuffle(x):
            real_shuffle(x)
            self.shuffled.append([int(v) for v in x])

        def affine(im, m, dsize, **kw):
            full = np.eye(3)
            full[:2] = m
            self.matrix = full.copy()
            return real_affine(im, m, dsize, **kw)

        def persp(im, m, dsize, **kw):
            self.matrix = np.array(m, dtype=np.float64).copy()
            return real_persp(im, m, dsize, **kw)

        random.uniform, random.choices, random.shuffle = uniform, choices, shuffle
        cv2.warpAffine, cv2.warpPerspective = affine, persp
        return self

    def __exit__(self, *exc):
        random.uniform, random.choices, random.shuffle, cv2.warpAffine, cv2.warpPerspective = self._saved


def random_targets(rng, n, w, h, tiny=False):
    rows = []
    for _ in range(n):
        bw = rng.uniform(1, w * 0.6) if not tiny else rng.uniform(0.5, 4)
        bh = rng.uniform(1, h * 0.6) if not tiny else rng.uniform(0.5, 4)
        x1 = rng.uniform(-0.1 * w, w - bw * 0.5)
        y1 = rng.uniform(-0.1 * h, h - bh * 0.5)
        rows.append([rng.randint(0, 79), max(x1, 0.0), max(y1, 0.0), min(x1 + bw, w), min(y1 + bh, h)])
    return np.array(rows, dtype=np.float32).reshape(-1, 5)


def random_polygon(rng, w, h):
    cx, cy = rng.uniform(0.2 * w, 0.8 * w), rng.uniform(0.2 * h, 0.8 * h)
    k = rng.randint(3, 9)
    pts = []
    for j in range(k):
        ang = 2 * np.pi * j / k + rng.uniform(-0.2, 0.2)
        rad = rng.uniform(0.05, 0.3) * min(w, h)
        pts.append([cx + rad * np.cos(ang), cy + rad * np.sin(ang)])
    return np.clip(np.array(pts, dtype=np.float32), 0, None)


def perspective_cases(aug, rng):
    out = []
    specs = []
    for s in (64, 320, 640):
        for hyp in ("low", "heavy", "perspective"):
            specs.append((2 * s, 2 * s, -(s // 2), hyp, False))
    for (h, w) in ((640, 640), (480, 640), (352, 640)):
        for hyp in ("low", "heavy", "none"):
            specs.append((h, w, 0, hyp, False))
    for hyp in ("low", "heavy", "perspective"):
        specs.append((640, 640, -160, hyp, True))
    for k, (h, w, border, hyp, polygons) in enumerate(specs):
        im = np.zeros((h, w, 3), np.uint8)
        n = rng.randint(0, 12)
        targets = random_targets(rng, n, w, h)
        if k % 3 == 0 and n:
            targets = np.concatenate([targets, random_targets(rng, 3, w, h, tiny=True)])
        segments = []
        if polygons:
            segments = [random_polygon(rng, w, h) for _ in range(len(targets))]
            if len(segments) > 2:
                segments = segments[:-1]  # fewer polygons than rows, as a mixed mosaic can give
        seed = rng.randint(0, 2 ** 31)
        random.seed(seed)
        with Recorder() as rec:
            _, new = aug.random_perspective(im, targets.copy(), [s.copy() for s in segments],
                                            border=(border, border), **HYPS[hyp])
        assert len(rec.uniform) == 8, rec.uniform
        out.append({
            "h": h, "w": w, "border": border, "hyp": HYPS[hyp], "polygons": polygons,
            "targets": f32(targets), "segments": [f32(s) for s in segments],
            "draws": [float(v) for v in rec.uniform],
            "matrix": None if rec.matrix is None else [float(v) for v in rec.matrix.reshape(-1)],
            "out": f32(new),
        })
    return out


def write_image(path, w, h, rng):
    im = np.full((h, w, 3), rng.randint(0, 255), np.uint8)
    cv2.imwrite(str(path), im)


def mosaic_cases(dl, tmp, rng):
    # A small dataset: sizes chosen so tiles get cropped on every side of the canvas.
    sizes = [(64, 48), (48, 64), (100, 30), (20, 90), (64, 64), (33, 57), (128, 96)]
    root = tmp / "mosaic"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for i, (w, h) in enumerate(sizes):
        write_image(root / "images" / f"im{i}.png", w, h, rng)
        lines = []
        if i == 4:  # polygon labels
            for _ in range(3):
                poly = random_polygon(rng, 1.0, 1.0)
                poly = np.clip(poly, 0, 1)
                lines.append(" ".join([str(rng.randint(0, 5))] + [f"{v:.6f}" for v in poly.reshape(-1)]))
        elif i != 2:  # image 2 has no label file
            for _ in range(rng.randint(1, 6)):
                bw, bh = rng.uniform(0.02, 0.7), rng.uniform(0.02, 0.7)
                x, y = rng.uniform(bw / 2, 1 - bw / 2), rng.uniform(bh / 2, 1 - bh / 2)
                lines.append(f"{rng.randint(0, 5)} {x:.6f} {y:.6f} {bw:.6f} {bh:.6f}")
        if i != 2:
            (root / "labels" / f"im{i}.txt").write_text("\n".join(lines) + "\n")
    out = []
    for img_size in (64, 96):
        for hyp in ("low", "heavy", "perspective"):
            full_hyp = dict(HYPS[hyp], hsv_h=0.0, hsv_s=0.0, hsv_v=0.0, flipud=0.0, fliplr=0.0, mosaic=1.0,
                            mixup=0.0, copy_paste=0.0)
            ds = dl.LoadImagesAndLabels(str(root / "images"), img_size=img_size, batch_size=4, augment=True,
                                        hyp=full_hyp, rect=False, cache_images=False, stride=32)
            images = [{"w": int(s[0]), "h": int(s[1]), "labels": f32(lb), "segments": [f32(sg) for sg in sg_list]}
                      for s, lb, sg_list in zip(ds.shapes, ds.labels, ds.segments)]
            for index in range(len(sizes)):
                seed = rng.randint(0, 2 ** 31)
                random.seed(seed)
                with Recorder() as rec:
                    _, labels4 = ds.load_mosaic(index)
                assert len(rec.uniform) == 10 and len(rec.shuffled) == 1, (rec.uniform, rec.shuffled)
                out.append({
                    "img_size": img_size, "hyp": HYPS[hyp], "index": index,
                    "images": images,
                    "yc": int(rec.uniform[0]), "xc": int(rec.uniform[1]),
                    "order": rec.shuffled[0],
                    "draws": [float(v) for v in rec.uniform[2:]],
                    "matrix": [float(v) for v in rec.matrix.reshape(-1)],
                    "out": f32(labels4),
                })
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="ultralytics/yolov5 checkout at 48a85314 (default: $YOLO_REF)")
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "augment_labels.json"))
    args = ap.parse_args()
    ref = reference.load(args.ref)
    reference.quiet(ref)
    import utils.augmentations as aug
    import utils.dataloaders as dl
    dl.LOGGER.setLevel(40)

    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as d:
        doc = {
            "reference": "ultralytics/yolov5@48a85314",
            "command": "/work/venv-ref/bin/python tools/parity/make_augment_label_fixtures.py --ref /work/ref-yolov5",
            "perspective": perspective_cases(aug, rng),
            "mosaic": mosaic_cases(dl, Path(d), rng),
        }
    Path(args.out).write_text(json.dumps(doc, indent=None, separators=(",", ":")) + "\n")
    print(f"{args.out}: {len(doc['perspective'])} perspective, {len(doc['mosaic'])} mosaic cases")


if __name__ == "__main__":
    main()
