#!/usr/bin/env bash
# Prepares .deps/ (git-ignored) for tools/gpu_check.sh: the Debian packages the GPU machine lacks
# (OpenBLAS, Catch2, pkgconf, yaml-cpp, nlohmann-json, libjpeg-turbo, stb) as .debs, and the cuDNN headers this build was written against.
# Run here, then carry .deps with the device call.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .deps/cudnn/include
(cd .deps && apt-get download libopenblas-dev libopenblas0 libopenblas0-pthread \
  libopenblas-pthread-dev libgfortran5 catch2 pkgconf pkgconf-bin libpkgconf3 libyaml-cpp-dev \
  libyaml-cpp0.7 nlohmann-json3-dev libturbojpeg0-dev libturbojpeg0 libjpeg62-turbo-dev libjpeg62-turbo libstb-dev libstb0 2>/dev/null)
cp /usr/local/cuda/include/cudnn*.h .deps/cudnn/include/
ls -la .deps
