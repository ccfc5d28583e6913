"""Write tests/fixtures/label_checks.json: the reference's label checks on a crafted bad dataset.

    /work/venv-ref/bin/python tools/parity/make_label_check_fixtures.py --ref /work/ref-yolov5

A dataset in ultralytics layout (images/, labels/) is written to a temporary folder from fixed
bytes: good labels in every readable image format, missing / empty / blank label files, wrong
column counts, negative and out-of-range values, duplicate rows, non-numeric text, polygon rows,
corrupt / truncated / tiny / EXIF-rotated / unsupported images and files the listing must skip.
The reference's own LoadImagesAndLabels(images, img_size=64, augment=False, cache_images=False)
then scans it, with its worker Pool swapped for a ThreadPool so that a wrapper around
verify_image_label can record every per-file outcome (kept or not, labels, segments, size,
message). The temporary root is written as "{root}" in every string, and every crafted file's
bytes are stored base64-encoded so tests/test_data_label_fixture.cpp can rebuild the set exactly.
Rerunning gives the same bytes.
"""

import argparse
import base64
import io
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def picture(w, h, seed):
    """A smooth colour gradient with a little noise: compresses to a few hundred bytes as JPEG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 127 // max(w + h - 2, 1)], -1)
    noise = rng.integers(0, 16, (h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def cv2_bytes(ext, w, h, seed, params=()):
    ok, buf = cv2.imencode(ext, picture(w, h, seed), list(params))
    assert ok
    return buf.tobytes()


def jpg(w, h, seed):
    return cv2_bytes(".jpg", w, h, seed, (cv2.IMWRITE_JPEG_QUALITY, 75))


def png(w, h, seed):
    return cv2_bytes(".png", w, h, seed)


def bmp(w, h, seed):
    return cv2_bytes(".bmp", w, h, seed)


def pil_bytes(fmt, w, h, seed, **kw):
    out = io.BytesIO()
    Image.fromarray(picture(w, h, seed)[:, :, ::-1]).save(out, fmt, **kw)
    return out.getvalue()


def exif_jpg(w, h, seed, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    return pil_bytes("JPEG", w, h, seed, quality=75, exif=exif.tobytes())


def gif(w, h, seed):
    out = io.BytesIO()
    Image.fromarray(picture(w, h, seed)).convert("P", palette=Image.ADAPTIVE, colors=16).save(out, "GIF")
    return out.getvalue()


GOOD = "0 0.5 0.5 0.25 0.25\n1 0.3 0.7 0.1 0.2\n"


def cases():
    """(image path, image bytes, label text or None, what the case checks), in no particular order."""
    c = []

    def add(name, data, label, why):
        c.append((name, data, label, why))

    add("good_jpg.jpg", jpg(32, 24, 1), GOOD, "good labels, JPEG")
    add("good_png.png", png(40, 30, 2), "2 0.1 0.2 0.3 0.4\n0 1 1 1 1\n5 .5 5e-1 +0.25 0.125\n",
        "good labels, PNG, numbers in several spellings")
    add("good_bmp.bmp", bmp(20, 16, 3), "3 0.25 0.75 0.5 0.5\n", "good labels, BMP")
    add("good_jpeg.jpeg", jpg(24, 32, 4), GOOD, ".jpeg extension")
    add("Upper.PNG", png(16, 16, 5), "0 0.5 0.5 1 1\n", "upper-case extension")
    add("crlf.png", png(30, 12, 6), "\r\n0 0.5 0.5 0.2 0.2\r\n\r\n\t1\t0.25  0.25 0.1 0.1 \r\n",
        "CRLF line ends, blank lines, tabs")
    add("missing.jpg", jpg(18, 18, 7), None, "no label file")
    add("empty.png", png(12, 14, 8), "", "empty label file")
    add("blank.png", png(14, 12, 9), "  \n\t\n   \n", "whitespace-only label file")
    add("cols4.png", png(16, 16, 10), "0 0.5 0.5 0.2\n0 0.1 0.1 0.1\n", "4 columns")
    add("cols6.png", png(16, 16, 11), "0 0.5 0.5 0.2 0.2 0.9\n", "6 columns")
    add("ragged.png", png(16, 16, 12), "0 0.5 0.5 0.2 0.2\n0 0.1 0.1 0.1\n", "rows of 5 and 4 values")
    add("neg1.png", png(16, 16, 13), "0 -0.1 0.5 0.2 0.2\n", "one negative value")
    add("neg2.png", png(16, 16, 14), "0 0.5 -0.3 0.2 0.2\n-1 0.5 0.5 0.2 0.2\n", "two negative values")
    add("nan.png", png(16, 16, 15), "0 nan 0.5 0.2 0.2\n", "NaN coordinate")
    add("big1.png", png(16, 16, 16), "0 0.5 1.5 0.2 0.2\n", "one coordinate > 1")
    add("big2.png", png(16, 16, 17), "0 0.5 0.5 2 0.2\n0 1.25 0.5 0.2 0.2\n", "two coordinates > 1")
    add("dups.png", png(20, 20, 18),
        "1 0.5 0.5 0.2 0.2\n0 0.7 0.3 0.1 0.1\n1 0.5 0.5 0.2 0.2\n0 0.1 0.9 0.1 0.1\n0 0.7 0.3 0.1 0.1\n",
        "duplicate rows: removed, rows sorted")
    add("nonnum.png", png(16, 16, 19), "0 0.5 abc 0.2 0.2\n", "non-numeric text")
    add("bigcls.png", png(16, 16, 20), "999 0.5 0.5 0.2 0.2\n", "class id 999 (valid for the scan)")
    add("poly.png", png(24, 24, 21),
        "0 0.1 0.1 0.4 0.1 0.4 0.3\n2 0.5 0.5 0.9 0.5 0.9 0.95 0.5 0.95\n", "polygon rows -> boxes")
    add("mixed.png", png(24, 24, 22), "1 0.2 0.2 0.6 0.2 0.6 0.6 0.2 0.6\n0 0.5 0.5 0.2 0.2\n",
        "polygon row and a plain row")
    add("polydup.png", png(24, 24, 23),
        "1 0.2 0.2 0.6 0.2 0.6 0.6\n0 0.1 0.1 0.3 0.1 0.3 0.3\n1 0.2 0.2 0.6 0.2 0.6 0.6\n",
        "duplicate polygon rows")
    add("polyodd.png", png(24, 24, 24), "0 0.1 0.1 0.2 0.2 0.3 0.3 0.4\n", "polygon with an odd coordinate count")
    rng = np.random.default_rng(99)
    add("corrupt.jpg", b"not a JPEG " + rng.integers(0, 256, 300, dtype=np.uint8).tobytes(),
        GOOD, "garbage bytes named .jpg")
    add("zero.png", b"", GOOD, "0-byte image")
    whole = jpg(32, 32, 25)
    add("trunc_eoi.jpg", whole[:-2], GOOD, "JPEG without its FF D9 end marker")
    add("trunc_half.jpg", whole[:len(whole) // 2], GOOD, "JPEG cut in half")
    add("trailing.jpg", jpg(28, 20, 26) + b"\x00\x00\x00\x00", GOOD, "JPEG with bytes after FF D9")
    add("trailing_dups.jpg", jpg(20, 28, 27) + b"\x00\x00",
        "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n", "JPEG with bytes after FF D9 and duplicate rows")
    add("tiny.png", png(8, 20, 28), GOOD, "image under 10 px wide")
    add("exif6.jpg", exif_jpg(32, 20, 29, 6), GOOD, "EXIF orientation 6 (size swapped)")
    add("exif8.jpg", exif_jpg(20, 12, 30, 8), GOOD, "EXIF orientation 8 (size swapped)")
    add("exif5.jpg", exif_jpg(32, 20, 31, 5), GOOD, "EXIF orientation 5 (transpose)")
    add("gif_named.jpg", gif(16, 16, 32), GOOD, "GIF bytes named .jpg")
    add("tiff.tif", pil_bytes("TIFF", 16, 12, 33), GOOD, "TIFF image")
    add("webp.webp", pil_bytes("WEBP", 16, 12, 34, lossless=True), GOOD, "WebP image")
    add("sub/nested.jpg", jpg(16, 16, 35), GOOD, "image in a sub-folder")
    add("dir.jpg/inner.png", png(16, 16, 36), GOOD, "image inside a folder named like an image")
    return c


IGNORED = [
    ("images/readme.txt", b"not an image\n", "unsupported extension"),
    ("images/photo.gif", None, "GIF extension (not in IMG_FORMATS)"),
    ("images/noext", None, "no extension"),
    ("images/.hidden.jpg", None, "hidden file"),
    ("images/.hid/x.png", None, "file in a hidden folder"),
]


def label_path(image_rel):
    return "labels/" + image_rel.rsplit(".", 1)[0] + ".txt"


def f32_list(a):
    return [float(v) for v in np.asarray(a, dtype=np.float32).reshape(-1)]


def polygon_dedup(gen, text):
    """verify_image_label's polygon and duplicate steps, with the polygons picked by a list."""
    rows = [x.split() for x in text.strip().splitlines() if len(x)]
    classes = np.array([x[0] for x in rows], dtype=np.float32)
    segments = [np.array(x[1:], dtype=np.float32).reshape(-1, 2) for x in rows]
    lb = np.concatenate((classes.reshape(-1, 1), gen.segments2boxes(segments)), 1).astype(np.float32)
    _, i = np.unique(lb, axis=0, return_index=True)
    return {"labels": [f32_list(row) for row in lb[i]], "segments": [f32_list(segments[k]) for k in i],
            "removed": int(len(lb) - len(i))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", help="ultralytics/yolov5 checkout at 48a85314 (default: $YOLO_REF)")
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures" / "label_checks.json"))
    args = ap.parse_args()
    ref = reference.load(args.ref)
    reference.quiet(ref)
    import multiprocessing.pool
    import utils.dataloaders as dl
    import utils.general as gen
    dl.LOGGER.setLevel(40)

    files = {}  # root-relative path -> bytes
    why = {}
    for name, data, label, what in cases():
        files["images/" + name] = data
        why["images/" + name] = what
        if label is not None:
            files[label_path(name)] = label.encode()
    for rel, data, what in IGNORED:
        files[rel] = data if data is not None else jpg(16, 16, 40) if rel.endswith(".jpg") else \
            gif(16, 16, 41) if rel.endswith(".gif") else png(16, 16, 42)
        why[rel] = what

    outcomes = {}
    real_verify = dl.verify_image_label

    def recording_verify(a):
        r = real_verify(a)
        outcomes[a[0]] = r
        return r

    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "ds"
        for rel, data in sorted(files.items()):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)

        dl.Pool = multiprocessing.pool.ThreadPool
        dl.verify_image_label = recording_verify
        try:
            ds = dl.LoadImagesAndLabels(str(root / "images"), img_size=64, augment=False, cache_images=False)
        finally:
            dl.verify_image_label = real_verify
        cache = np.load(root / "labels.cache", allow_pickle=True).item()
        rewritten = sorted(rel for rel, data in files.items() if (root / rel).read_bytes() != data)

        def rel(s):
            return s.replace(str(root), "{root}")

        listed = list(outcomes)  # the order verify_image_label was called in: the sorted listing
        records = []
        for im_file in listed:
            f, lb, shape, segments, nm, nf, ne, nc, msg = outcomes[im_file]
            r = {"image": rel(im_file), "why": why.get(rel(im_file)[len("{root}/"):], ""), "kept": f is not None,
                 "missing": nm, "found": nf, "empty": ne, "corrupt": nc, "message": rel(msg)}
            if f is not None:
                r["size"] = [int(shape[0]), int(shape[1])]
                r["labels"] = [f32_list(row) for row in lb]
                r["segments"] = [f32_list(s) for s in segments]
            records.append(r)
        nf, nm, ne, nc, n = cache["results"]
        polydup = polygon_dedup(gen, (root / label_path("polydup.png")).read_text())
        doc = {
            "reference": "ultralytics/yolov5@48a85314",
            "command": "/work/venv-ref/bin/python tools/parity/make_label_check_fixtures.py --ref /work/ref-yolov5",
            "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "pillow": Image.__version__},
            "source": "{root}/images",
            "files": [{"path": p, "base64": base64.b64encode(files[p]).decode()} for p in sorted(files)],
            "ignored": [p for p, _, _ in IGNORED],
            "listed": [rel(f) for f in listed],
            "kept": [rel(f) for f in ds.im_files],
            "results": records,
            "messages": [rel(m) for m in cache["msgs"]],
            "totals": {"found": int(nf), "missing": int(nm), "empty": int(ne), "corrupt": int(nc), "total": int(n)},
            "summary": rel(f"Scanning '{root / 'labels'}' images and labels... {nf} found, {nm} missing, "
                           f"{ne} empty, {nc} corrupt"),
            "rewritten_by_reference": rewritten,
            # The reference drops images/polydup.png (it indexes a list of polygons with an index
            # array); these are its own segments2boxes and np.unique steps carried to the end.
            "polydup_deduplicated": polydup,
        }
    text = json.dumps(doc, indent=1) + "\n"
    Path(args.out).write_text(text)
    print(f"{args.out}: {len(files)} files, {len(listed)} listed, {len(ds.im_files)} kept, "
          f"{nc} corrupt, {len(text)} bytes")


if __name__ == "__main__":
    main()
