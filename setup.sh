#!/usr/bin/env bash
# One-command set-up for yolocore on a fresh Debian/Ubuntu machine.
#   ./setup.sh          install dependencies, build (CUDA too when nvcc is found), then run what the
#                       product does so far: `yolo selfcheck` (every kernel on each device), the
#                       built-in dataset (`yolo dataset shapes` into datasets/shapes, then
#                       `yolo dataset check` and the data loader on it with `yolo dataset bench`)
#                       and `yolo info configs/yolov5n.yaml`
#   ./setup.sh test     the same set-up, then every test (CTest), then the unit tests again under
#                       AddressSanitizer + UndefinedBehaviorSanitizer (CPU-only build)
# Environment: JOBS (parallel build jobs, default: cores), YOLO_CUDA=ON|OFF (default: auto).
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-run}
jobs=${JOBS:-$(nproc)}

packages=(build-essential cmake ninja-build pkg-config ccache libopenblas-dev libyaml-cpp-dev
          libstb-dev libturbojpeg0-dev libjpeg62-turbo-dev nlohmann-json3-dev catch2)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

cuda_flag=()
[ -n "${YOLO_CUDA:-}" ] && cuda_flag=(-DYOLO_CUDA="$YOLO_CUDA")
[ -z "${YOLO_CUDA:-}" ] && [ -x /usr/local/cuda/bin/nvcc ] && export PATH="/usr/local/cuda/bin:$PATH"

build() {  # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

case "$mode" in
  run)
    build build "${cuda_flag[@]}"
    echo "setup: built build/bin/yolo"
    build/bin/yolo version
    build/bin/yolo devices
    build/bin/yolo selfcheck
    [ -f datasets/shapes/data.yaml ] || build/bin/yolo dataset shapes --out datasets/shapes
    build/bin/yolo dataset check --data datasets/shapes/data.yaml
    # The training data loader on it: mosaic batches as `yolo train` will get them.
    build/bin/yolo dataset bench --data datasets/shapes/data.yaml --img 320 --batch 16 \
      --workers 2 --batches 8 --warmup 2
    build/bin/yolo info configs/yolov5n.yaml | tail -n 1
    ;;
  test)
    build build -DYOLO_WERROR=ON "${cuda_flag[@]}"
    ctest --test-dir build --output-on-failure -j "$jobs"
    build build-asan -DYOLO_WERROR=ON -DYOLO_CUDA=OFF -DYOLO_SANITIZE=ON -DYOLO_BUILD_BENCH=OFF \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -j "$jobs"
    ;;
  *)
    echo "usage: ./setup.sh [run|test]" >&2
    exit 2
    ;;
esac
