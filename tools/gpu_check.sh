#!/usr/bin/env bash
# One call on a GPU machine: build (sm_90, Release), run every test (the [cuda] ones included),
# `yolo selfcheck`, our benchmarks and PyTorch's on the same shapes, and print a short table last.
# Needs .deps/ carried (tools/fetch_gpu_deps.sh; with YOLO_REF set there, it also copies the reference
# checkout for the whole-model comparison). Logs and JSON go to $OUT (or /tmp/gpu_check): eight
# files, the most a device call brings back.
#   bash tools/gpu_check.sh [--no-bench | --quick [FILTER]]
# --quick: only the [cuda] tests (the CPU ones run in CI), selfcheck, and the bench rows whose name
# contains FILTER (default yolov5s).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check}
LOGS=/tmp/gpu_check_logs  # bulky logs stay on the machine; $OUT keeps the few files worth fetching
mkdir -p "$OUT" "$LOGS"
bench=1
quick=0
[ "${1:-}" = "--no-bench" ] && bench=0
[ "${1:-}" = "--quick" ] && quick=1
filter=()
[ $quick -eq 1 ] && filter=(--filter "${2:-yolov5s}")
t0=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - t0 ))s] $*"; }

stamp "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
nvcc --version | tail -1
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" 2>&1

# Debian packages unpacked into a private prefix.
DEPS=/tmp/yolo-deps
mkdir -p "$DEPS"
for f in .deps/*.deb; do dpkg -x "$f" "$DEPS"; done
export PATH="$DEPS/usr/bin:$PATH"

# cuDNN and cuBLAS: the toolkit's, else PyTorch's nvidia-* wheels; headers from the toolkit, else
# the ones carried in .deps/cudnn/include.
pylib() { python3 -c "import importlib,os; m=importlib.import_module('nvidia.$1'); print(os.path.join(list(m.__path__)[0],'lib'))" 2>/dev/null; }
cudnn_lib=""
for d in /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu "$(pylib cudnn)"; do
  if [ -n "$d" ] && ls "$d"/libcudnn.so* >/dev/null 2>&1; then cudnn_lib=$d; break; fi
done
cudnn_inc=.deps/cudnn/include
[ -f /usr/local/cuda/include/cudnn.h ] && cudnn_inc=/usr/local/cuda/include
[ -n "$cudnn_lib" ] && [ -f "$cudnn_lib/../include/cudnn.h" ] && cudnn_inc="$cudnn_lib/../include"
CUDNN=/tmp/yolo-cudnn
rm -rf "$CUDNN" && mkdir -p "$CUDNN/lib"
ln -s "$(readlink -f "$cudnn_inc")" "$CUDNN/include"
for f in "$cudnn_lib"/libcudnn*.so*; do ln -sf "$f" "$CUDNN/lib/"; done
[ -e "$CUDNN/lib/libcudnn.so" ] || ln -sf "$(ls "$cudnn_lib"/libcudnn.so.* | head -1)" "$CUDNN/lib/libcudnn.so"
echo "cudnn: lib $cudnn_lib, headers $cudnn_inc"
cublas_hint=()
if ! ls /usr/local/cuda/lib64/libcublas.so* >/dev/null 2>&1; then
  cb=$(pylib cublas); echo "cublas from $cb"
  cublas_hint=(-DCUDA_cublas_LIBRARY="$(ls "$cb"/libcublas.so.* | head -1)" -DCUDA_cublasLt_LIBRARY="$(ls "$cb"/libcublasLt.so.* | head -1)")
  export LD_LIBRARY_PATH="$cb:${LD_LIBRARY_PATH:-}"
fi
export LD_LIBRARY_PATH="$CUDNN/lib:$DEPS/usr/lib/x86_64-linux-gnu/openblas-pthread:$DEPS/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"

stamp "configure + build"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DYOLO_CUDA=ON -DYOLO_OPENBLAS_ROOT="$DEPS" -DCMAKE_PREFIX_PATH="$DEPS/usr" \
  -DYOLO_CUDNN_ROOT="$CUDNN" "${cublas_hint[@]}" > "$LOGS/cmake.log" 2>&1 || { tail -40 "$LOGS/cmake.log"; exit 1; }
cmake --build build-gpu -j "$(nproc)" > "$LOGS/build.log" 2>&1 || { grep -E "error|Error" "$LOGS/build.log" | head -40; tail -20 "$LOGS/build.log"; exit 1; }

# Stop here when the GPU is not usable: the [cuda] tests would only skip.
build-gpu/bin/yolo devices 2>&1 | tee "$LOGS/devices.log"
if ! grep -q "^cuda:0" "$LOGS/devices.log"; then
  echo "no usable CUDA device (see above): stopping before the tests"
  exit 3
fi
export YOLO_REQUIRE_CUDA=1  # a [cuda] test that finds no device fails instead of skipping

stamp "tests"
# The test, self-check and benchmark commands run under `timeout`, so a hang costs minutes, not the
# whole call; --durations names each finished test case, so a hang shows where it stopped.
timeout -k 5 240 build-gpu/yolo_tests "[cuda]" --reporter compact --success --durations yes 2>&1 |
  grep -vE "^\S+:[0-9]+: passed" > "$OUT/cuda_tests.log"
cuda_rc=${PIPESTATUS[0]}
grep -E "failed|FAILED" "$OUT/cuda_tests.log" | head -20
tail -3 "$OUT/cuda_tests.log"
echo "[cuda] tests: exit code $cuda_rc"
ctest_rc=0
if [ $quick -eq 0 ]; then
  # Eight tests at a time with two OpenMP threads each: 16 threads per test would oversubscribe the
  # cores many times over, and spinning OpenMP barriers then crawl.
  OMP_NUM_THREADS=2 ctest --test-dir build-gpu -j 8 --timeout 120 --output-on-failure > "$OUT/ctest.log" 2>&1
  ctest_rc=$?
  grep -E "tests passed|tests failed|Failed|\*\*\*" "$OUT/ctest.log" | head -30
fi
timeout -k 5 60 build-gpu/bin/yolo selfcheck 2>&1 | tee "$OUT/selfcheck.log"
selfcheck_rc=${PIPESTATUS[0]}

if [ $bench -eq 1 ]; then
  stamp "benchmarks (ours)"
  timeout -k 5 240 build-gpu/bin/yolo_bench --device cuda --repeats 20 "${filter[@]}" --json "$OUT/ours_cuda.jsonl" > "$LOGS/bench_ours.log" 2>&1
  tail -5 "$LOGS/bench_ours.log"
  stamp "benchmarks (PyTorch)"
  build-gpu/bin/yolo_bench --device cuda --list-json "$LOGS/rows.json"
  # Plain FP32 on both sides for f32 convolutions (ours uses no TF32); f16 rows are the AMP case.
  timeout -k 5 180 python3 tools/bench_torch_ops.py --device cuda --no-tf32 --repeats 20 "${filter[@]}" --rows "$LOGS/rows.json" --json "$OUT/torch_cuda.jsonl" > "$LOGS/bench_torch.log" 2>&1
  tail -3 "$LOGS/bench_torch.log"
  stamp "data loader (CPU apply and GPU apply, batch 16, 640, built-in shapes set at 640 px)"
  [ -f datasets/shapes640/data.yaml ] || build-gpu/bin/yolo dataset shapes --out datasets/shapes640 \
    --imgsz 640 --train 256 --val 16 > "$LOGS/shapes.log" 2>&1
  for w in 2 8; do
    for mode in "--device cpu" "--device cuda" "--device cuda --gpu-augment"; do
      # shellcheck disable=SC2086
      # The images/s line, or the last line (an error) when there is none.
      echo "workers $w $mode: $(timeout -k 5 60 build-gpu/bin/yolo dataset bench --data datasets/shapes640/data.yaml \
        --img 640 --batch 16 --workers $w --batches 20 --warmup 3 $mode 2>&1 |
        awk '/images\/s/ {hit = $0} {last = $0} END {print (hit != "" ? hit : last)}')"
    done
  done | tee "$OUT/loader.log"
  stamp "whole models, batch 16, 640 (ours vs the reference model in PyTorch, FP32 on both sides)"
  rm -f "$OUT/model_ours.jsonl" "$OUT/model_ref.jsonl"
  for cfg in yolov5n yolov5s; do
    rm -f "$LOGS/m_ours.jsonl" "$LOGS/m_ref.jsonl"  # a failed run must not append the last model's rows
    timeout -k 5 120 build-gpu/bin/yolo_bench --device cuda --model configs/$cfg.yaml --batch 16 --img 640 \
      --repeats 10 --json "$LOGS/m_ours.jsonl" > "$LOGS/model_$cfg.log" 2>&1 || tail -3 "$LOGS/model_$cfg.log"
    cat "$LOGS/m_ours.jsonl" >> "$OUT/model_ours.jsonl" 2>/dev/null
    if [ -d .deps/ref-yolov5 ]; then
      timeout -k 5 120 python3 tools/bench_reference_model.py --device cuda --ref .deps/ref-yolov5 --cfg configs/$cfg.yaml \
        --batch 16 --img 640 --repeats 10 --warmup 3 --json "$LOGS/m_ref.jsonl" > "$LOGS/model_ref_$cfg.log" 2>&1 \
        || tail -5 "$LOGS/model_ref_$cfg.log"
      cat "$LOGS/m_ref.jsonl" >> "$OUT/model_ref.jsonl" 2>/dev/null
    fi
  done
  stamp "table"
  torch_rows=()
  [ -s "$OUT/torch_cuda.jsonl" ] && torch_rows=("$OUT/torch_cuda.jsonl")
  [ -s "$OUT/ours_cuda.jsonl" ] && python3 tools/bench_table.py "$OUT/ours_cuda.jsonl" "${torch_rows[@]}"
  echo
  model_ref=()
  [ -s "$OUT/model_ref.jsonl" ] && model_ref=("$OUT/model_ref.jsonl")
  [ -s "$OUT/model_ours.jsonl" ] && python3 tools/bench_table.py "$OUT/model_ours.jsonl" "${model_ref[@]}"
fi
stamp "done ([cuda] tests rc $cuda_rc, ctest rc $ctest_rc, selfcheck rc $selfcheck_rc)"
for rc in "$cuda_rc" "$ctest_rc" "$selfcheck_rc"; do [ "$rc" -ne 0 ] && exit "$rc"; done
exit 0
