"""Write tests/fixtures/pixels.safetensors: the reference's pixel operations on small images.

    /work/venv-ref/bin/python tools/parity/make_pixel_fixtures.py --ref /work/ref-yolov5

Every output comes from cv2 (OpenCV 4.6, as the reference runs it) or the reference's own
functions (ultralytics/yolov5@48a85314: utils.augmentations.letterbox, random_perspective,
augment_hsv, mixup) on synthetic images from a fixed seed: cv2.resize INTER_LINEAR / INTER_AREA,
cv2.warpAffine / warpPerspective with border 114 (matrices written by hand and built by
random_perspective from a seeded `random`; the matrix it hands cv2 is captured by wrapping the
cv2 call), letterbox, augment_hsv (gains recomputed from the same NumPy seed), and a whole mosaic:
four images placed on the 114 canvas as load_mosaic places them, then random_perspective, plus
a mixup of two such mosaics. Images are stored RGB (the reference's BGR arrays flipped once), u8
(h, w, 3); matrices float64 (3, 3); the case list with every parameter is the JSON metadata
`cases`. Rerunning gives the same bytes.
"""

import argparse
import json
import random
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402
from safetensors_io import save_sorted  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def textured(rng, h, w):
    """A smooth-plus-noise BGR image (interpolation differences show up on both)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([127 + 120 * np.sin(x / 5.3 + y / 7.1), 127 + 120 * np.cos(x / 3.7 - y / 4.3),
                     127 + 120 * np.sin((x + y) / 6.1)], -1)
    noise = rng.integers(-40, 41, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


class Writer:
    def __init__(self):
        self.tensors = {}
        self.cases = {}

    def image(self, key, bgr):
        assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3
        self.tensors[key] = torch.from_numpy(bgr[:, :, ::-1].copy())
        return key

    def matrix(self, key, m):
        self.tensors[key] = torch.from_numpy(np.array(m, np.float64).reshape(3, 3))
        return key

    def case(self, group, entry):
        self.cases.setdefault(group, []).append(entry)


class Capture:
    """Wraps cv2.warpAffine / warpPerspective to record the matrix the reference passes."""

    def __init__(self):
        self.calls = []
        self.affine, self.persp = cv2.warpAffine, cv2.warpPerspective

    def __enter__(self):
        def wa(im, m, dsize, **kw):
            self.calls.append(("affine", np.vstack([np.asarray(m, np.float64), [0, 0, 1]]), dsize))
            return self.affine(im, m, dsize, **kw)

        def wp(im, m, dsize, **kw):
            self.calls.append(("perspective", np.asarray(m, np.float64), dsize))
            return self.persp(im, m, dsize, **kw)

        cv2.warpAffine, cv2.warpPerspective = wa, wp
        return self

    def __exit__(self, *exc):
        cv2.warpAffine, cv2.warpPerspective = self.affine, self.persp


def resize_cases(out, imgs):
    cases = [("a", 23, 17), ("a", 61, 47), ("a", 37, 29), ("a", 18, 14), ("b", 32, 24), ("b", 21, 16),
             ("b", 64, 21), ("b", 100, 75), ("b", 20, 48), ("c", 32, 24), ("c", 48, 36), ("c", 40, 30),
             ("c", 95, 71), ("c", 24, 18), ("c", 13, 11)]
    for interp, name in ((cv2.INTER_LINEAR, "linear"), (cv2.INTER_AREA, "area")):
        for k, (src, w, h) in enumerate(cases):
            res = cv2.resize(imgs[src], (w, h), interpolation=interp)
            key = out.image(f"resize.{name}.{k}", res)
            out.case("resize", {"interp": name, "src": f"img.{src}", "w": w, "h": h, "out": key})


def warp_cases(out, imgs, aug):
    hand = [np.array([[1, 0, 3.25], [0, 1, -2.5], [0, 0, 1]]),
            np.array([[0.9, 0.2, 4.1], [-0.15, 1.1, -3.3], [0, 0, 1]]),
            np.array([[2.3, 0.0, -30.7], [0.0, 2.3, -25.1], [0, 0, 1]]),
            np.array([[-1.0, 0.05, 70.2], [0.03, -0.95, 50.5], [0, 0, 1]]),
            np.array([[0.45, -0.1, 1.0], [0.1, 0.45, 2.0], [0, 0, 1]])]
    k = 0
    for m in hand:
        for src, (w, h) in (("b", (64, 48)), ("c", (50, 40))):
            res = cv2.warpAffine(imgs[src], m[:2], dsize=(w, h), borderValue=(114, 114, 114))
            out.case("warp", {"warp": "affine", "src": f"img.{src}", "w": w, "h": h,
                              "m": out.matrix(f"warp.m.{k}", m), "out": out.image(f"warp.out.{k}", res)})
            k += 1
    persp = [np.array([[1.0, 0.1, 2.0], [0.05, 0.95, 1.0], [0.002, -0.001, 1.0]]),
             np.array([[0.8, -0.2, 20.0], [0.25, 0.9, -5.0], [-0.003, 0.004, 1.1]])]
    for m in persp:
        for src, (w, h) in (("c", (160, 40)), ("b", (64, 48)), ("a", (37, 20))):
            res = cv2.warpPerspective(imgs[src], m, dsize=(w, h), borderValue=(114, 114, 114))
            out.case("warp", {"warp": "perspective", "src": f"img.{src}", "w": w, "h": h,
                              "m": out.matrix(f"warp.m.{k}", m), "out": out.image(f"warp.out.{k}", res)})
            k += 1
    # random_perspective itself (border 0, as after letterbox), affine and perspective
    for seed, persp_amt, src in ((1, 0.0, "b"), (2, 0.0, "c"), (3, 0.0005, "c"), (4, 0.001, "b"), (5, 0.0, "a")):
        random.seed(seed)
        with Capture() as cap:
            res, _ = aug.random_perspective(imgs[src], np.zeros((0, 5)), degrees=10, translate=0.1, scale=0.5,
                                            shear=2.0, perspective=persp_amt)
        kind, m, (w, h) = cap.calls[0]
        out.case("warp", {"warp": kind, "src": f"img.{src}", "w": int(w), "h": int(h), "seed": seed,
                          "m": out.matrix(f"warp.m.{k}", m), "out": out.image(f"warp.out.{k}", res)})
        k += 1


def letterbox_cases(out, imgs, aug):
    cases = [("a", (64, 64), True, False, True, 32), ("a", (64, 64), False, False, True, 32),
             ("b", (64, 64), False, False, True, 32), ("b", (40, 56), False, True, True, 32),
             ("c", (48, 48), False, False, False, 32), ("c", (64, 96), True, False, True, 32),
             ("c", (100, 100), False, False, True, 32), ("a", (32, 32), False, False, False, 32)]
    for k, (src, shape, auto, fill, up, stride) in enumerate(cases):
        res, ratio, (dw, dh) = aug.letterbox(imgs[src], shape, auto=auto, scaleFill=fill, scaleup=up, stride=stride)
        out.case("letterbox", {"src": f"img.{src}", "new_h": shape[0], "new_w": shape[1], "auto": auto,
                               "scale_fill": fill, "scaleup": up, "stride": stride,
                               "out": out.image(f"letterbox.{k}", res)})


def hsv_cases(out, imgs, aug, rng):
    cases = [("b", 0.015, 0.7, 0.4, 11), ("c", 0.015, 0.7, 0.4, 12), ("a", 0.5, 0.5, 0.5, 13),
             ("d", 0.9, 0.9, 0.9, 14), ("d", 0.0, 0.0, 0.9, 15), ("e", 0.3, 0.9, 0.9, 16)]
    for k, (src, hg, sg, vg, seed) in enumerate(cases):
        np.random.seed(seed)
        r = np.random.uniform(-1, 1, 3) * [hg, sg, vg] + 1
        im = imgs[src].copy()
        np.random.seed(seed)
        aug.augment_hsv(im, hg, sg, vg)
        out.case("hsv", {"src": f"img.{src}", "gain": [float(v) for v in r], "seed": seed,
                         "out": out.image(f"hsv.{k}", im)})


def place_mosaic(imgs, s, xc, yc):
    """load_mosaic's placement of four images (h, w from each) on the 2s x 2s canvas of 114."""
    img4 = np.full((s * 2, s * 2, 3), 114, dtype=np.uint8)
    tiles = []
    for i, img in enumerate(imgs):
        h, w = img.shape[:2]
        if i == 0:
            xa0, ya0, xa1, ya1 = max(xc - w, 0), max(yc - h, 0), xc, yc
            xb0, yb0 = w - (xa1 - xa0), h - (ya1 - ya0)
        elif i == 1:
            xa0, ya0, xa1, ya1 = xc, max(yc - h, 0), min(xc + w, s * 2), yc
            xb0, yb0 = 0, h - (ya1 - ya0)
        elif i == 2:
            xa0, ya0, xa1, ya1 = max(xc - w, 0), yc, xc, min(s * 2, yc + h)
            xb0, yb0 = w - (xa1 - xa0), 0
        else:
            xa0, ya0, xa1, ya1 = xc, yc, min(xc + w, s * 2), min(s * 2, yc + h)
            xb0, yb0 = 0, 0
        img4[ya0:ya1, xa0:xa1] = img[yb0:yb0 + (ya1 - ya0), xb0:xb0 + (xa1 - xa0)]
        tiles.append([xa0, ya0, xa1, ya1, xb0, yb0])
    return img4, tiles


def mosaic_cases(out, imgs, aug):
    s = 32
    sets = [("m0", "m1", "m2", "m3"), ("m2", "m0", "m3", "m1")]
    made = []
    for k, (names, seed, degrees) in enumerate(zip(sets, (21, 22), (10.0, 0.0))):
        random.seed(seed)
        yc, xc = (int(random.uniform(-x, 2 * s + x)) for x in (-s // 2, -s // 2))
        canvas, tiles = place_mosaic([imgs[n] for n in names], s, xc, yc)
        with Capture() as cap:
            res, _ = aug.random_perspective(canvas, np.zeros((0, 5)), degrees=degrees, translate=0.1, scale=0.5,
                                            shear=0.0, perspective=0.0, border=(-s // 2, -s // 2))
        kind, m, (w, h) = cap.calls[0]
        made.append(res)
        out.case("mosaic", {"srcs": [f"img.{n}" for n in names], "tiles": tiles, "s": s, "xc": xc, "yc": yc,
                            "seed": seed, "w": int(w), "h": int(h), "warp": kind,
                            "m": out.matrix(f"mosaic.m.{k}", m), "canvas": out.image(f"mosaic.canvas.{k}", canvas),
                            "out": out.image(f"mosaic.out.{k}", res)})
    np.random.seed(31)
    r = np.random.beta(32.0, 32.0)
    np.random.seed(31)
    mixed, _ = aug.mixup(made[0], np.zeros((0, 5)), made[1], np.zeros((0, 5)))
    out.case("mixup", {"a": "mosaic.out.0", "b": "mosaic.out.1", "r": float(r), "seed": 31,
                       "out": out.image("mixup.0", mixed)})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="ultralytics/yolov5 checkout at 48a85314 (default: $YOLO_REF)")
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "pixels.safetensors"))
    args = ap.parse_args()
    ref = reference.load(args.ref)
    reference.quiet(ref)
    import utils.augmentations as aug

    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    out = Writer()
    imgs = {"a": textured(rng, 29, 37), "b": textured(rng, 48, 64), "c": textured(rng, 72, 96),
            "d": rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8),
            "e": rng.integers(0, 256, size=(23, 77, 3), dtype=np.uint8),
            "m0": textured(rng, 30, 40), "m1": textured(rng, 40, 30), "m2": textured(rng, 29, 37),
            "m3": textured(rng, 25, 25)}
    for name, im in imgs.items():
        out.image(f"img.{name}", im)
    resize_cases(out, imgs)
    warp_cases(out, imgs, aug)
    letterbox_cases(out, imgs, aug)
    hsv_cases(out, imgs, aug, rng)
    mosaic_cases(out, imgs, aug)
    meta = {"cases": json.dumps(out.cases, sort_keys=True), "reference": "ultralytics/yolov5@48a85314",
            "cv2": cv2.__version__, "layout": "images RGB u8 (h, w, 3); matrices float64 (3, 3)",
            "command": "/work/venv-ref/bin/python tools/parity/make_pixel_fixtures.py --ref /work/ref-yolov5"}
    save_sorted(out.tensors, args.out, metadata=meta)
    n = sum(len(v) for v in out.cases.values())
    print(f"{args.out}: {len(out.tensors)} tensors, {n} cases, {Path(args.out).stat().st_size} bytes")


if __name__ == "__main__":
    main()
