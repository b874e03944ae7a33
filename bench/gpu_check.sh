#!/usr/bin/env bash
# Train the reward model, SFT and PPO a few steps each on a synthetic snapshot and print the device,
# throughput (samples/s, tokens/s) and peak memory of each; with --model PATH (a local Hugging Face
# causal LM, e.g. a 0.5B one), the same three again on that model. A few minutes on one H100; also
# runs on CPU (smaller sizes, slowly).
#
#   bench/gpu_check.sh [--size small|medium] [--model PATH]   (size: medium on CUDA, small on CPU)
#
# Python: $PYTHON, else .venv/bin/python, else python3. When torch, transformers, trl or datasets
# are missing it installs them the way the repo pins them: torch==2.13.0 FIRST (alone: anything that
# depends on torch would otherwise pull another build), then requirements/ml.txt. A torch that is
# already there (e.g. a CUDA build) is kept: the rest of ml.txt is installed without its torch line.
# Offline machines: set WHEELS_DIR to a folder of wheels (pip --no-index --find-links).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then :
elif [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python
else PYTHON=python3
fi
PIP=("$PYTHON" -m pip install -q)
if [[ -n "${WHEELS_DIR:-}" ]]; then PIP+=(--no-index --find-links "$WHEELS_DIR"); fi

has() { "$PYTHON" -c "import $1" 2>/dev/null; }

if ! has torch; then
  echo "installing torch==2.13.0 (the repo's pin) first" >&2
  "${PIP[@]}" "torch==2.13.0"
fi
if ! has transformers || ! has trl || ! has datasets || ! has accelerate || ! has peft; then
  echo "installing requirements/ml.txt beside the present torch" >&2
  grep -v '^torch==' requirements/ml.txt | "${PIP[@]}" -r /dev/stdin
fi

"$PYTHON" - <<'PY'
import torch
print(f"python ok: torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
PY
export TOKENIZERS_PARALLELISM=false
# The jobs' own logs (Trainer, warnings) go to a file, shown when something fails or VERBOSE=1.
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
if ! "$PYTHON" -m models_service.training.check "$@" 2>"$LOG"; then
  tail -n 60 "$LOG" >&2
  exit 1
fi
if [[ -n "${VERBOSE:-}" ]]; then cat "$LOG" >&2; fi
