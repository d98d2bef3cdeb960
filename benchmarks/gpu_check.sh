#!/usr/bin/env bash
# The GPU check: on a machine with CUDA, in under 8 minutes, runs what no CPU suite can.
#
#   benchmarks/gpu_check.sh [--dry-run] [--out FILE]
#
# 1. prints the device (nvidia-smi and torch's view of it);
# 2. runs the tests marked `gpu` (python -m pytest -q -m gpu);
# 3. runs `petaseg bench inference --json` and `petaseg bench model --json`, their GPU sections
#    only (PETASEG_BENCH_GPU_ONLY=1);
# 4. writes the device, the test result and the two benchmarks' last JSON lines into one file
#    (default benchmarks/results/gpu_check.json) and prints the headline figures.
# Without CUDA (or with --dry-run) it only says what it would run and measure, and exits 0.
# Exit status: 0 when every step passed; 1 when the gpu tests or a benchmark failed (the other
# steps still run, so one session on a GPU gives every figure); 2 for a usage error.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python}"
OUT="benchmarks/results/gpu_check.json"
DRY=0
TESTS_S=210   # time limits per step (seconds): 210 + 2 x 120 + start-up stays under 8 minutes
BENCH_S=120

while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY=1; shift ;;
    --out)
      [[ $# -ge 2 ]] || { echo "gpu_check.sh: --out needs a file name, e.g. --out gpu.json" >&2; exit 2; }
      OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1'; use --dry-run or --out FILE" >&2; exit 2 ;;
  esac
done

cuda="$("$PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null || echo none)"

plan() {
  cat <<'EOF'
step 1  device: nvidia-smi (name, driver, memory) and torch (version, CUDA version, device name)
step 2  python -m pytest -q -m gpu   (tests marked gpu):
        - CUDA float32 prediction equals the CPU's within 1e-5 (fib-boundary-v1, TF32 off)
        - CUDA bf16 prediction within the documented tolerance (max |diff| <= 0.05,
          mean <= 0.002, >= 99.5 % agree at 0.5) and not identical to float32
        - 3D U-Net training on cuda in bf16: weights move, checkpoint, resume (Adam state too)
        - 2D semantic U-Net training on cuda: weights move, checkpoint, load, train on
        - the predict stage on a LocalCluster worker with GPU=1 runs on cuda
          (device in the stage's timing, torch.cuda.max_memory_allocated > 0 in the worker)
step 3  PETASEG_BENCH_GPU_ONLY=1 petaseg bench inference --json   (GPU section), figures:
        gpu_vps (volume voxels/s of the predict stage on one GPU worker, bf16, blocks read ahead),
        gpu_busy_fraction (time in the network / the worker's time on the run),
        gpu_peak_mb (torch peak allocated), gpu_peak_fraction (network FLOP/s achieved over the
        GPU's measured bf16 matmul FLOP/s; target >= 0.25), gpu_bf16_matmul_tflops
step 4  PETASEG_BENCH_GPU_ONLY=1 petaseg bench model --json   (GPU section), figures:
        gpu_vps (bf16 inference voxels/s, batches copied from host memory), gpu_train_vps_bf16,
        gpu_busy_fraction (CUDA-event network time / wall), gpu_peak_mb, gpu_peak_fraction
step 5  results: the device, the test summary and both JSON lines in one file
EOF
  echo "        ($OUT)"
}

if [[ "$DRY" == 1 || "$cuda" != 1 ]]; then
  why="--dry-run given"
  [[ "$cuda" == 0 ]] && why="no CUDA device (torch.cuda.is_available() is False)"
  [[ "$cuda" == none ]] && why="'$PYTHON' cannot import torch (activate the environment)"
  echo "gpu_check: DRY RUN: $why; nothing below is run or measured."
  echo "On a machine with CUDA this script would run, in under 8 minutes:"
  plan
  exit 0
fi

if ! command -v petaseg >/dev/null; then
  echo "gpu_check.sh: 'petaseg' is not on PATH; activate the environment first (. .venv/bin/activate)" >&2
  exit 2
fi

status=0
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

echo "== step 1: device"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$logs/smi.txt"
else
  echo "nvidia-smi not found" | tee "$logs/smi.txt"
fi
"$PYTHON" -c 'import torch; print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")' | tee "$logs/torch.txt"

echo "== step 2: tests marked gpu"
tests_rc=0
timeout "$TESTS_S" "$PYTHON" -m pytest -q -p no:cacheprovider -m gpu 2>&1 | tee "$logs/tests.txt" || tests_rc=$?
[[ "$tests_rc" == 0 ]] || status=1

bench() {  # bench NAME: its GPU section; the last line (its JSON) goes to $logs/NAME.json
  local rc=0
  PETASEG_BENCH_GPU_ONLY=1 timeout "$BENCH_S" petaseg bench "$1" --json >"$logs/$1.out" 2>"$logs/$1.err" || rc=$?
  tail -n 1 "$logs/$1.out" >"$logs/$1.json"
  if [[ "$rc" != 0 ]]; then
    echo "bench $1 failed (exit $rc):"; tail -n 20 "$logs/$1.err"; status=1
  fi
}
echo "== step 3: petaseg bench inference --json (GPU section)"
bench inference
echo "== step 4: petaseg bench model --json (GPU section)"
bench model

echo "== step 5: results"
mkdir -p "$(dirname "$OUT")"
"$PYTHON" benchmarks/gpu_results.py "$logs" "$tests_rc" "$OUT"
exit "$status"
