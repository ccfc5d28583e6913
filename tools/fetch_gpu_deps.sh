#!/usr/bin/env bash
# Prepares .deps/ (git-ignored) for tools/gpu_check.sh: the Debian packages the GPU machine lacks
# (OpenBLAS, Catch2, pkgconf, yaml-cpp, nlohmann-json, libjpeg-turbo, stb) as .debs, the cuDNN headers
# this build was written against, and (YOLO_REF=checkout) the reference for the whole-model rows.
# Run here, then carry .deps with the device call.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/cudnn/include
(cd .deps && apt-get download libopenblas-dev libopenblas0 libopenblas0-pthread \
  libopenblas-pthread-dev libgfortran5 libquadmath0 catch2 pkgconf pkgconf-bin libpkgconf3 libyaml-cpp-dev \
  libyaml-cpp0.7 nlohmann-json3-dev libturbojpeg0-dev libturbojpeg0 libjpeg62-turbo-dev libjpeg62-turbo libstb-dev libstb0 2>/dev/null)
cp /usr/local/cuda/include/cudnn*.h .deps/cudnn/include/
# The reference checkout (ultralytics/yolov5 at 48a85314, from $YOLO_REF), without its .git, for
# gpu_check's whole-model rows (tools/bench_reference_model.py --device cuda).
if [ -n "${YOLO_REF:-}" ] && [ -f "$YOLO_REF/models/yolo.py" ]; then
  rm -rf .deps/ref-yolov5 && mkdir -p .deps/ref-yolov5
  (cd "$YOLO_REF" && tar --exclude=.git -cf - .) | tar -xf - -C .deps/ref-yolov5
  git -C "$YOLO_REF" rev-parse HEAD > .deps/ref-yolov5/REF_COMMIT 2>/dev/null || true
fi
ls -la .deps
