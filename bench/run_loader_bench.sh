#!/usr/bin/env bash
# Side-by-side benchmark of the training data loader: the reference's create_dataloader (PyTorch
# worker processes, cv2) against yolocore's DataLoader (`yolo dataset bench`), same dataset, image
# size, batch and hyp, at 1 and 2 workers, in one call. Prints both tools' lines and a table.
#   bench/run_loader_bench.sh                     # from the repository root
#   YOLO=build/bin/yolo REF=/work/ref-yolov5 PY=/work/venv-ref/bin/python BATCHES=30 WORKERS="1 2" \
#     CACHE=ram bench/run_loader_bench.sh       # both loaders with images cached in RAM
# Makes datasets/shapes640 (256 train images, 640 px) with `yolo dataset shapes` when it is missing.
set -euo pipefail

YOLO=${YOLO:-build/bin/yolo}
REF=${REF:-/work/ref-yolov5}
PY=${PY:-/work/venv-ref/bin/python}
DATA_DIR=${DATA_DIR:-datasets/shapes640}
IMG=${IMG:-640}
BATCH=${BATCH:-16}
BATCHES=${BATCHES:-30}
WARMUP=${WARMUP:-3}
WORKERS=${WORKERS:-"1 2"}
HYP=${HYP:-configs/hyp.scratch-low.yaml}
CACHE=${CACHE:-}  # "ram": both loaders cache the decoded images first (--cache ram)
EXTRA=${EXTRA:-}  # more `yolo dataset bench` options, e.g. "--device cuda --gpu-augment"

[[ -x "$YOLO" ]] || { echo "run_loader_bench.sh: no yolo binary at $YOLO (build it, or set YOLO=)" >&2; exit 2; }
if [[ ! -f "$DATA_DIR/data.yaml" ]]; then
  "$YOLO" dataset shapes --out "$DATA_DIR" --imgsz 640 --train 256 --val 16
fi

# Both sides: the same two OpenMP threads, and OpenBLAS left to detect the machine.
run() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 "$@"; }
# "... median X images/s, total Y images/s" -> "X Y"
rates() { sed -n 's/.*median \([0-9.]*\) images\/s, total \([0-9.]*\) images\/s.*/\1 \2/p' | tail -1; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%Y-%m-%dT%H:%MZ)"
table=()
for w in $WORKERS; do
  cache_opt=()
  [[ -n "$CACHE" ]] && cache_opt=(--cache "$CACHE")
  ref_out=$(run "$PY" tools/bench_reference_loader.py --ref "$REF" --data "$DATA_DIR/data.yaml" \
    --hyp "$HYP" --img "$IMG" --batch "$BATCH" --workers "$w" --batches "$BATCHES" \
    --warmup "$WARMUP" "${cache_opt[@]}" 2>&1)
  echo "$ref_out" | grep 'reference loader'
  # shellcheck disable=SC2086
  our_out=$(run "$YOLO" dataset bench --data "$DATA_DIR/data.yaml" --hyp "$HYP" --img "$IMG" \
    --batch "$BATCH" --workers "$w" --batches "$BATCHES" --warmup "$WARMUP" "${cache_opt[@]}" $EXTRA 2>&1)
  echo "$our_out" | grep -E 'dataset bench|yolocore loader|^loader:'
  read -r ref_med ref_tot <<<"$(echo "$ref_out" | rates)"
  read -r our_med our_tot <<<"$(echo "$our_out" | rates)"
  table+=("$(printf '| %7s | %9s | %8s | %9s | %8s | %5.2fx | %5.2fx |' "$w" "$ref_med" "$ref_tot" \
    "$our_med" "$our_tot" "$(echo "$our_med / $ref_med" | bc -l)" "$(echo "$our_tot / $ref_tot" | bc -l)")")
done
echo
echo "images/s, batch $BATCH, img $IMG, $BATCHES batches after $WARMUP warm-up, $DATA_DIR, $HYP" \
  "${CACHE:+cache $CACHE} ${EXTRA}"
echo "| workers | ref median | ref total | ours median | ours total | median ratio | total ratio |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${table[@]}"
