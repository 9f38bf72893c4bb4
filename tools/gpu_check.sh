#!/usr/bin/env bash
# The GPU checks of issue #26 as one prepared run, so that a lent GPU's few minutes go to
# measuring: CUDA cost tables at batch 1 (CUDA graph replays) and 256 (eager), each validated
# on unseen networks, onnxruntime's CUDA provider where installed, and DARTS' first-order search
# step and final training at the full protocol's sizes per precision (in NCHW and channels-last,
# and compiled), with the hours they project. A failing step is recorded and the run goes on;
# every step has a time limit inside the run's budget.
#
# Here, before the device call: copy the pure-Python packages the GPU image lacks (see
# /work/.library/device/KINDS.md) into build/gpu-deps, which .gitignore's build/ keeps out of git:
#   tools/gpu_check.sh --prepare
# On the device machine, in the repository root (about 5 minutes, at most BUDGET seconds, so that
# with the machine's start it stays inside a 15-minute lease with time for a partial rerun):
#   run(command="bash tools/gpu_check.sh", carry=["build/gpu-deps"], timeout_s=480)
# Results under $OUT: gpu_check.log (everything), summary.txt (each step's exit status and
# time), bench.jsonl (the benchmarks' JSON lines), cost_tables.tar.gz (the tables and their
# validation files). A dry run on a CPU, with small settings:
#   DEVICE=cpu PYTHON=.venv/bin/python CALIBRATE=3 VALIDATE=3 MAX_TIME=5 LATER=1 BATCHES=1,8 PROTOCOL=smoke \
#     OUT=/tmp/gpu-check tools/gpu_check.sh
set -euo pipefail

REPO=$(pwd)
DEPS=$REPO/build/gpu-deps
MISSING_ON_GPU="fvcore iopath yacs termcolor"  # pure Python; what they need in turn is on the GPU image

if [[ ${1:-} == --prepare ]]; then
  here=${PYTHON:-$REPO/.venv/bin/python}
  rm -rf "$DEPS" && mkdir -p "$DEPS"
  for package in $MISSING_ON_GPU; do
    folder=$("$here" -c "import $package, os; print(os.path.dirname($package.__file__))")
    cp -r "$folder" "$DEPS/" && rm -rf "$DEPS/$package/__pycache__"
  done
  echo "copied $MISSING_ON_GPU into $DEPS ($(du -sh "$DEPS" | cut -f1)); carry build/gpu-deps"
  exit 0
fi

PYTHON=${PYTHON:-python3}      # the GPU image's python3 holds its torch
[[ $PYTHON == /* || $PYTHON != */* ]] || PYTHON=$REPO/$PYTHON  # commands run elsewhere (a venv's link kept as it is)
DEVICE=${DEVICE:-cuda}
BATCHES=${BATCHES:-1,256}      # batch 1: graph replays; 256: eager (above cuda_graph_max_batch)
CALIBRATE=${CALIBRATE:-30}     # networks the predictor is fitted on, per batch size
VALIDATE=${VALIDATE:-50}       # unseen networks it is validated on (2% steps in the share within ±10%)
MAX_TIME=${MAX_TIME:-45}       # seconds of rounds per table, the minimum 9 rounds always run (GPU timings settle fast)
LATER=${LATER:-4}              # networks measured again in a separate process (a quarter of MAX_TIME)
MIN_TIME=${MIN_TIME:-0.01}     # seconds of timed calls per item and round: 10 ms is hundreds of replays
BUDGET=${BUDGET:-420}          # seconds for the whole run; steps are cut short to end inside it
PRECISIONS=${PRECISIONS:-fp32,bf16,fp16}  # for the benchmarks that take --precision
PROTOCOL=${PROTOCOL:-full}     # whose search step and final training the benchmarks time and project (DARTS' sizes)
COMPILED=${COMPILED:-bf16}     # the precision final training is also timed compiled in, with what is left of the budget
OUT=${OUT:-$(mktemp -d)}
RUN=$(mktemp -d)  # commands run here: in the checkout, python -m nasbench imports its nasbench/, which lacks nasbench.baselines
SUMMARY=$OUT/summary.txt
BENCH=$OUT/bench.jsonl
NASBENCH=("$PYTHON" -m nasbench)
FAILED=()

step() {  # step NAME SECONDS COMMAND...: run it in $RUN within its limit and what is left of the budget; record how it ended
  local name=$1 limit=$2 rc=0 started=$SECONDS
  shift 2
  local left=$((BUDGET - SECONDS - 15))
  ((limit < left)) || limit=$left
  if ((limit < 10)); then
    echo "$name: skipped, the budget is spent" | tee -a "$SUMMARY"
    FAILED+=("$name")
    return 0
  fi
  echo "=== $name (at ${SECONDS}s, limit ${limit}s): $*"
  (cd "$RUN" && timeout --signal=INT --kill-after=20 "$limit" "$@") || rc=$?
  echo "$name: exit $rc after $((SECONDS - started))s" | tee -a "$SUMMARY"
  ((rc == 0)) || FAILED+=("$name")
}

bench() {  # bench NAME ARGS...: `nasbench bench ARGS --json`, its JSON lines into bench.jsonl too
  local name=$1
  shift
  # shellcheck disable=SC2016  # expanded by the inner shell
  step "$name" 150 bash -c 'set -o pipefail; "${@:2}" | tee -a "$1"' _ "$BENCH" "${NASBENCH[@]}" bench "$@" --json
}

main() {
  echo "=== machine"
  date -u
  nvidia-smi || echo "(no nvidia-smi)"
  echo "cores: $(nproc)"
  "$PYTHON" -c '
import platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version(), "cuda available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0))
try:
    import onnxruntime
    print("onnxruntime", onnxruntime.__version__, onnxruntime.get_available_providers())
except ImportError as error:
    print("onnxruntime:", error)
' || true

  local site=$RUN/site
  export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
  [[ ! -d $DEPS ]] || export PYTHONPATH=$PYTHONPATH:$DEPS
  step install 120 "$PYTHON" -m pip install -q --no-deps --no-index --no-build-isolation --no-compile --target "$site" "$REPO"
  if [[ ! -d $site/nasbench ]]; then  # no build tools there: the package laid out as pyproject.toml maps it
    mkdir -p "$site" && cp -r "$REPO/nasbench" "$site/" && cp -r "$REPO/baselines" "$site/nasbench/baselines"
  fi
  step imports 60 "$PYTHON" -c "import fvcore, nasbench.baselines, nasbench.hardware.accelerator; print('imports ok')"
  # the CUDA timing path for real first (skipped without CUDA): a broken capture shows here in seconds
  step "timing tests" 120 "$PYTHON" -m pytest -q -p no:cacheprovider --rootdir "$REPO" -c "$REPO/pyproject.toml" \
    "$REPO/tests/hardware/test_accelerator.py" "$REPO/tests/hardware/test_measure.py"

  # estimated on an H200, not measured: per table about 20 s to prepare (fvcore counts, one graph
  # capture per network at batch 1), 45-70 s of rounds, 25 s for the separate-process check
  step "profile torch $DEVICE b$BATCHES" 300 "${NASBENCH[@]}" profile --space cell --protocol proxy --device "$DEVICE" \
    --backend torch --batch-size "$BATCHES" --calibrate "$CALIBRATE" --validate "$VALIDATE" --max-time "$MAX_TIME" \
    --later "$LATER" --min-time "$MIN_TIME" --out "$RUN/tables" --no-progress
  local provider
  provider=$([[ $DEVICE == cuda ]] && echo CUDAExecutionProvider || echo CPUExecutionProvider)
  if "$PYTHON" -c "import onnxruntime, sys; sys.exit('$provider' not in onnxruntime.get_available_providers())"; then
    step "profile onnxruntime $DEVICE b1" 120 "${NASBENCH[@]}" profile --space cell --protocol proxy --device "$DEVICE" \
      --backend onnxruntime --batch-size 1 --calibrate 8 --validate 8 --max-time 10 --later 0 --min-time "$MIN_TIME" \
      --out "$RUN/tables" --no-progress
  else
    echo "onnxruntime has no $provider here (pip install onnxruntime-gpu): its table skipped" | tee -a "$SUMMARY"
  fi

  # DARTS' first-order search and final training at the protocol's sizes, with their projected hours
  bench "search-step darts $PROTOCOL" search-step --method darts --protocol "$PROTOCOL" --device "$DEVICE" \
    --precision "$PRECISIONS"
  bench "final-training $PROTOCOL" final-training --protocol "$PROTOCOL" --device "$DEVICE" --precision "$PRECISIONS"
  # whether channels-last pays on this GPU (a run trains in NCHW there: unmeasured so far)
  bench "search-step darts $PROTOCOL channels-last" search-step --method darts --protocol "$PROTOCOL" \
    --device "$DEVICE" --precision "$PRECISIONS" --memory-format channels-last
  bench "final-training $PROTOCOL channels-last" final-training --protocol "$PROTOCOL" --device "$DEVICE" \
    --precision "$PRECISIONS" --memory-format channels-last
  bench "final-training $PROTOCOL compiled $COMPILED" final-training --protocol "$PROTOCOL" --device "$DEVICE" \
    --precision "$COMPILED" --compile

  if [[ -d $RUN/tables ]]; then
    tar czf "$OUT/cost_tables.tar.gz" -C "$RUN" tables
    tar tzf "$OUT/cost_tables.tar.gz"
  fi
  echo "=== done in ${SECONDS}s; failed: ${FAILED[*]:-none}" | tee -a "$SUMMARY"
  ((${#FAILED[@]} == 0))
}

mkdir -p "$OUT"
: >"$SUMMARY"
: >"$BENCH"
main 2>&1 | tee "$OUT/gpu_check.log"
