#!/usr/bin/env bash
# The GPU check in one command (bench/gpu/README.md). On the CUDA machine, with ".whl" carried:
#     bash bench/gpu/run.sh
# installs the wheels, runs the gpu-marked tests and the 512² benchmarks within ~7.5 minutes,
# and writes gpu-results.json, gpu-results.md, gpu-<date>-<gpu>.json (the figures, with the
# commit) and gpu-run.log to $OUT (else bench/results/gpu-<date>/, the figures also copied to
# bench/results/ to be committed). Here, on CPU:  bash bench/gpu/run.sh --dry-run
# Other arguments go to bench/gpu/run.py (--budget SECONDS, --skip tests,compile, ...).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
python=${PYTHON:-python3}
out=${OUT:-bench/results/gpu-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out" || exit 2
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false
# The commit measured: git here, else what prepare.py wrote into the carried .whl/.
GPU_CHECK_COMMIT=$(git rev-parse HEAD 2>/dev/null || cat .whl/COMMIT 2>/dev/null || echo unknown)
export GPU_CHECK_COMMIT
# run.py's own watchdog writes partial results at its budget (450 s); this is the backstop.
timeout --kill-after=10 "${GPU_CHECK_TIMEOUT:-500}" \
    "$python" bench/gpu/run.py --out "$out" "$@" 2>&1 | tee "$out/gpu-run.log"
status=${PIPESTATUS[0]}
# The figures to commit (bench/results/gpu-<date>-<gpu>.json), next to the full results.
if [ -z "${OUT:-}" ]; then cp "$out"/gpu-2*.json bench/results/ 2>/dev/null; fi
echo "exit status $status; results in $out"
exit "$status"
