#!/usr/bin/env bash
# The recipe-throughput benchmark on one lent GPU (an H200 in this project), in about 5 minutes:
# benchmarks/recipes.py --device cuda at every recipe's real batch (no --batch-size override), 5 warm-up
# + 30 timed steps each, 8 loader workers, twins large enough that one epoch holds all 35 steps (800
# identities: 2,400 Market-twin train images; 1,700: about 4,800 CUHK-twin image-caption pairs).
#
#   OUT=/path/to/out bash benchmarks/gpu_recipes.sh        (the device runner sets $OUT)
#
# Writes $OUT/recipes-cuda.json (the figures, hardware included), $OUT/recipes-cuda.log and
# $OUT/nvidia-smi.txt. PYTHON picks the interpreter (default: .venv/bin/python if present, else python3);
# TIME_LIMIT (default 150 s) bounds each of the two invocations, so a slow machine still returns its log.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:?set OUT to the output folder}"
mkdir -p "$OUT"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PLIPBENCH_CACHE="${PLIPBENCH_CACHE:-/tmp/plipbench-gpu-cache}"
export PLIPBENCH_OFFLINE=1 HF_HUB_OFFLINE=1
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1 || true
"$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.__version__, torch.cuda.get_device_name(0))"

run() {  # one invocation per twin size, so each twin is generated once; a failure does not stop the other
  timeout "${TIME_LIMIT:-150}" "$PYTHON" benchmarks/recipes.py --device cuda --steps 30 --warmup-steps 5 \
    --workers 8 "$@" || echo "recipes.py $* failed or timed out (exit $?)"
}
{
  run --recipes bot,transreid --identities 800 --json "$OUT/recipes-cuda-image.json"
  run --recipes plip-cmpmc,irra,rethinking,solider-par --identities 1700 --json "$OUT/recipes-cuda-text.json"
} 2>&1 | tee "$OUT/recipes-cuda.log"
"$PYTHON" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
files = [out / f"recipes-cuda-{k}.json" for k in ("image", "text")]
parts = [json.loads(f.read_text()) for f in files if f.is_file()]
if not parts:
    sys.exit("no figures were written; see recipes-cuda.log")
merged = {"hardware": parts[0]["hardware"], "settings": [p["settings"] for p in parts],
          "results": [r for p in parts for r in p["results"]],
          "skipped": {k: v for p in parts for k, v in p["skipped"].items()}}
(out / "recipes-cuda.json").write_text(json.dumps(merged, indent=2) + "\n")
for r in merged["results"]:
    print(f"{r['recipe']:<11} {r['train_samples_per_s']:8.1f} samples/s  {r['memory']['peak_allocated_mib'] / 1024:6.2f} GiB"
          f"  eval {r['eval_images_per_s']:8.1f} img/s  projected {r['projection']['total_hours'] * 60:7.1f} min")
EOF
