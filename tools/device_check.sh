#!/usr/bin/env bash
# The one command for a lent GPU machine, run from the repository root with $OUT set:
#
#   bash tools/device_check.sh             # wheels -> CUDA build for sm_90 -> tools/gpu_check.py
#   bash tools/device_check.sh --dry-run   # (or DRY_RUN=1) what can be checked without a GPU
#
# Phases: environment, wheels (tools/device_prepare.py --check on the carried device_wheels/),
# install (pip --no-index --no-deps --target a temp dir, put on PYTHONPATH), build
# (atss_core._C in place, TORCH_CUDA_ARCH_LIST=9.0, MAX_JOBS=$(nproc)), gpu_check (its steps:
# CUDA tests, benchmarks, GPU-vs-CPU training). Everything ends inside BUDGET_S seconds.
# Written under $OUT as it goes: device_check.log (timestamped), device_check.json (one entry
# per phase), build.log, gpu_check.log, gpu_check.json (rewritten after every step), ops.json.
#
# Environment: OUT (default: a new temp dir), BUDGET_S (480), DEVICE_WHEELS (device_wheels),
# PYTHON (.venv/bin/python where there is one, else python3: on the GPU machine the one with
# torch), ITERATIONS (300, gpu_check's training iterations per precision), DEVICE_SITE and
# DEVICE_WORK (install and scratch dirs; default temp dirs).
# Exits 0 when no phase failed (in a dry run, phases that need a GPU are reported as skipped).
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DRY_RUN=${DRY_RUN:-0}
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    *) echo "device_check.sh: unknown argument '$arg' (only --dry-run)" >&2; exit 2 ;;
  esac
done
START=$(date +%s)
BUDGET_S=${BUDGET_S:-480}
# this checkout's venv where there is one (here); on the GPU machine, whose python3 holds torch
if [ -z "${PYTHON:-}" ]; then
  PYTHON=python3
  [ -x "$ROOT/.venv/bin/python" ] && PYTHON=$ROOT/.venv/bin/python
fi
ITERATIONS=${ITERATIONS:-300}
DEVICE_WHEELS=${DEVICE_WHEELS:-$ROOT/device_wheels}
if [ -z "${OUT:-}" ]; then
  OUT=$(mktemp -d /tmp/device_check_out.XXXXXX)
  out_note="OUT was unset: writing to $OUT"
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
LOG=$OUT/device_check.log
STATE=$OUT/device_check.json
if [ -n "${DEVICE_WORK:-}" ]; then
  WORK=$DEVICE_WORK
  mkdir -p "$WORK"
else  # scratch (training runs, the dry run's output), removed at the end
  WORK=$(mktemp -d /tmp/device_check_work.XXXXXX)
  CLEAN_WORK=1
fi
: > "$LOG"
rm -f "$STATE" "$OUT/gpu_check.json" "$OUT/gpu_check.log" "$OUT/build.log" "$OUT/ops.json"
FAILED=0

log() {  # one timestamped line, to the log and to stdout (the `run` tool shows stdout's tail)
  printf '[%s +%3ds] %s\n' "$(date -u +%H:%M:%S)" $(( $(date +%s) - START )) "$*" | tee -a "$LOG"
}

remaining() { echo $(( START + BUDGET_S - $(date +%s) )); }

record() {  # record PHASE STATUS DETAIL: sets one phase's entry in device_check.json (atomically)
  [ "$2" = failed ] && FAILED=1
  "$PYTHON" - "$STATE" "$1" "$2" "$3" "$(( $(date +%s) - START ))" "$DRY_RUN" "$BUDGET_S" <<'PY'
import json, os, sys
path, phase, status, detail, elapsed, dry_run, budget = sys.argv[1:]
try:
    with open(path) as f:
        data = json.load(f)
except (OSError, ValueError):
    data = {"dry_run": dry_run == "1", "budget_s": int(budget), "result": "running", "phases": []}
data["elapsed_s"] = int(elapsed)
if phase == "result":
    data["result"] = status
else:
    entry = {"phase": phase, "status": status, "at_s": int(elapsed), "detail": detail}
    names = [p["phase"] for p in data["phases"]]
    if phase in names:
        data["phases"][names.index(phase)] = entry
    else:
        data["phases"].append(entry)
with open(path + ".tmp", "w") as f:
    json.dump(data, f, indent=2)
os.replace(path + ".tmp", path)
PY
  log "$1: $2${3:+ -- $3}"
}

needs_gpu() {  # needs_gpu PHASE WHAT: a step a dry run cannot do
  record "$1" skipped "needs a GPU: $2"
}

clean_up() {  # the temp dirs this script made (not DEVICE_WORK / DEVICE_SITE)
  [ -n "${CLEAN_WORK:-}" ] && rm -rf "$WORK"
  [ -n "${CLEAN_SITE:-}" ] && rm -rf "$SITE"
  return 0
}

finish() {
  local result=ok
  clean_up
  [ "$FAILED" = 1 ] && result=failed
  record result "$result" ""
  log "done in $(( $(date +%s) - START )) s (budget ${BUDGET_S} s): $result; files in $OUT: $(cd "$OUT" && ls | tr '\n' ' ')"
  [ "$FAILED" = 1 ] && exit 1
  exit 0
}

trap 'log "interrupted (signal)"; record result interrupted ""; clean_up; exit 130' INT TERM

# --- environment ----------------------------------------------------------------------------
log "device_check: $([ "$DRY_RUN" = 1 ] && echo "DRY RUN (no GPU steps)" || echo "GPU run") in $ROOT, budget ${BUDGET_S} s"
[ -n "${out_note:-}" ] && log "$out_note"
if ! command -v "$PYTHON" > /dev/null; then
  log "no '$PYTHON' on PATH: set PYTHON to the python that holds torch"
  clean_up
  exit 1
fi
PYVER=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
env_info=$("$PYTHON" -c '
import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none visible"
print("torch {} (CUDA {}), GPU: {}".format(torch.__version__, torch.version.cuda, gpu))' 2>&1 | tail -n 1)
record environment ok "Python $PYVER ($(command -v "$PYTHON")), $env_info, $(nproc) cores"
if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >> "$LOG" 2>&1
fi

# --- wheels: the carried set is complete for cp312 linux (no network) -------------------------
if "$PYTHON" tools/device_prepare.py --check --wheels "$DEVICE_WHEELS" >> "$LOG" 2>&1; then
  record wheels ok "$(ls "$DEVICE_WHEELS"/*.whl | wc -l) wheels in $DEVICE_WHEELS, complete for CPython 3.12 linux"
  wheels_ok=1
else
  record wheels failed "tools/device_prepare.py --check found problems in $DEVICE_WHEELS (listed above in this log); run make device-prepare and carry device_wheels"
  wheels_ok=0
fi

# --- install: into a temp dir on PYTHONPATH --------------------------------------------------
# --no-deps with the files named: `pip install --target` ignores what is installed, so letting it
# resolve would ask for numpy from the (offline) folder; device_prepare's check did the resolving
SITE=""
if [ "$wheels_ok" != 1 ]; then
  record install failed "not run: the wheel check failed"
elif [ "$PYVER" != 3.12 ]; then
  if [ "$DRY_RUN" = 1 ]; then
    record install skipped "needs Python 3.12 (the GPU machine's): this is $PYVER, which cannot install cp312 wheels; their file names and METADATA were checked instead"
  else
    record install failed "the wheels are for CPython 3.12 but $PYTHON is Python $PYVER"
  fi
else
  if [ -n "${DEVICE_SITE:-}" ]; then
    SITE=$DEVICE_SITE
  else
    SITE=$(mktemp -d /tmp/device_site.XXXXXX)
    CLEAN_SITE=1
  fi
  if "$PYTHON" -m pip --version > /dev/null 2>&1; then
    timeout 120 "$PYTHON" -m pip install --disable-pip-version-check --no-index --no-deps --no-compile \
      --no-cache-dir --upgrade --target "$SITE" "$DEVICE_WHEELS"/*.whl >> "$LOG" 2>&1
    rc=$?
  else  # no pip: a wheel is a zip laid out for site-packages
    log "no pip for $PYTHON: unpacking the wheels instead"
    "$PYTHON" -c 'import sys, zipfile; [zipfile.ZipFile(w).extractall(sys.argv[1]) for w in sys.argv[2:]]' \
      "$SITE" "$DEVICE_WHEELS"/*.whl >> "$LOG" 2>&1
    rc=$?
  fi
  if [ "$rc" = 0 ] && PYTHONPATH="$SITE" "$PYTHON" -c "import yacs, yaml, pycocotools.coco, pytest" >> "$LOG" 2>&1; then
    record install ok "$(ls "$DEVICE_WHEELS"/*.whl | wc -l) wheels into $SITE; yacs, yaml, pycocotools, pytest import"
  else
    record install failed "pip install into $SITE (exit $rc) or the import of yacs/yaml/pycocotools/pytest failed (see the log)"
  fi
fi
export PYTHONPATH="$ROOT${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
# our tests need no pytest plugin; the machine's own (xdist, timeout, cov, ...) stay out
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1

# --- build: atss_core._C against this machine's torch, sm_90 only ----------------------------
JOBS=$(nproc)
BUILD_CMD="TORCH_CUDA_ARCH_LIST=9.0 FORCE_CUDA=1 MAX_JOBS=$JOBS CUDA_HOME=<toolkit> $PYTHON setup.py build_ext --inplace"
CUDA_HOME=$(bash tools/cuda_home.sh)  # empty when there is no toolkit
if [ "$DRY_RUN" = 1 ]; then
  log "CUDA toolkit here: ${CUDA_HOME:-none found (no nvcc on PATH, no /usr/local/cuda)}"
  needs_gpu build "CUDA build of atss_core._C for sm_90 ($BUILD_CMD)"
elif [ -z "${CUDA_HOME:-}" ] || [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
  record build failed "no CUDA toolkit: no nvcc on PATH, no /usr/local/cuda/bin/nvcc, CUDA_HOME='${CUDA_HOME:-}'"
elif ! "$PYTHON" -c "import setuptools" >> "$LOG" 2>&1; then
  record build failed "setuptools is not importable by $PYTHON: setup.py needs it (add it to device_prepare's packages)"
else
  export CUDA_HOME PATH="$CUDA_HOME/bin:$PATH"
  log "nvcc: $("$CUDA_HOME/bin/nvcc" --version | tail -n 1); building with $JOBS jobs, log in $OUT/build.log"
  limit=$(( $(remaining) - 90 ))  # leave gpu_check at least 90 s
  if [ "$limit" -lt 30 ]; then
    record build failed "not run: only $(remaining) s of the budget left"
  elif TORCH_CUDA_ARCH_LIST=9.0 FORCE_CUDA=1 MAX_JOBS=$JOBS timeout --kill-after=10 "$limit" \
      "$PYTHON" setup.py build_ext --inplace > "$OUT/build.log" 2>&1; then
    if "$PYTHON" -c "from atss_core import _C; assert _C.built_with_cuda(), 'no CUDA kernels'" >> "$LOG" 2>&1; then
      arches=""
      if command -v cuobjdump > /dev/null; then
        arches=$(cuobjdump --list-elf atss_core/_C*.so 2>/dev/null | grep -oE 'sm_[0-9]+a?' | sort -u | tr '\n' ' ')
      fi
      record build ok "atss_core._C built with CUDA kernels${arches:+ (machine code: $arches)}"
    else
      record build failed "the build finished but atss_core._C does not import with CUDA kernels (see the log)"
    fi
  else
    rc=$?
    grep -E "error" -A3 "$OUT/build.log" | head -n 60 >> "$LOG"
    tail -n 20 "$OUT/build.log" >> "$LOG"
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && why="timed out after $limit s" || why="exit $rc"
    record build failed "python setup.py build_ext --inplace: $why (errors above in this log; all of it in build.log)"
  fi
fi

# --- gpu_check: CUDA tests, benchmarks, GPU training against the CPU -------------------------
if [ "$DRY_RUN" = 1 ]; then
  # hide any GPU so that it cannot run for real; it must parse our options and stop at once
  CUDA_VISIBLE_DEVICES="" timeout 120 "$PYTHON" tools/gpu_check.py --iterations 1 --budget-s 1 \
    --json "$OUT/gpu_check.json" --output-dir "$WORK/gpu_check" > "$WORK/gpu_check_dry.log" 2>&1
  rc=$?
  cat "$WORK/gpu_check_dry.log" >> "$LOG"
  if [ "$rc" = 1 ] && grep -q "needs a CUDA GPU" "$WORK/gpu_check_dry.log"; then
    needs_gpu gpu_check "tools/gpu_check.py (CUDA tests, ops and model benchmarks, GPU-vs-CPU training); without one it stopped at once, as it should: $(grep -m1 -o 'gpu-check needs a CUDA GPU[^:]*' "$WORK/gpu_check_dry.log")"
  else
    record gpu_check failed "tools/gpu_check.py should stop at once without a GPU, but exited $rc: $(tail -n 1 "$WORK/gpu_check_dry.log")"
  fi
elif [ "$FAILED" = 1 ]; then
  record gpu_check failed "not run: an earlier phase failed"
else
  limit=$(( $(remaining) - 15 ))  # the last seconds are for copying ops.json and the summary
  if [ "$limit" -lt 30 ]; then
    record gpu_check failed "not run: only $(remaining) s of the budget left"
  else
    record gpu_check running "limit $limit s, $ITERATIONS iterations; steps land in gpu_check.json as they finish"
    timeout --kill-after=10 "$limit" "$PYTHON" -u tools/gpu_check.py --iterations "$ITERATIONS" \
      --budget-s $(( limit - 30 )) --json "$OUT/gpu_check.json" --output-dir "$WORK/gpu_check" 2>&1 \
      | tee "$OUT/gpu_check.log"
    rc=${PIPESTATUS[0]}
    [ -f "$WORK/gpu_check/ops.json" ] && cp "$WORK/gpu_check/ops.json" "$OUT/ops.json"
    case "$rc" in
      0) record gpu_check ok "every step passed (gpu_check.json)" ;;
      124|137) record gpu_check failed "cut off after $limit s: gpu_check.json holds the steps it finished and the one running" ;;
      *) record gpu_check failed "exit $rc: a step failed (gpu_check.json)" ;;
    esac
  fi
fi

finish
