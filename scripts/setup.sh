#!/usr/bin/env bash
# Create (or reuse) .venv and install unifiedreward with the extras the tests and demo need. Safe to re-run.
#
#   bash scripts/setup.sh              # .venv in the repository root
#   EXTRAS=video,dev bash scripts/setup.sh   # a lighter install (no DeepSpeed, no eval plotting)
#   TORCH_SPEC="torch==2.6.0 torchvision==0.21.0" bash scripts/setup.sh   # pick your own torch build
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-video,training,dpo,diffusion,eval,dev}
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}

if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($PYTHON --version)"
    "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --upgrade pip

# torch first, explicitly: a bare dependency resolution could otherwise pull a different (multi-GB) build.
if ! python -c "import torch, torchvision" >/dev/null 2>&1; then
    echo "[setup] installing $TORCH_SPEC"
    # shellcheck disable=SC2086
    python -m pip install --quiet $TORCH_SPEC
fi

echo "[setup] installing unifiedreward[$EXTRAS] (tested versions pinned by scripts/constraints.txt)"
python -m pip install --quiet -c scripts/constraints.txt -e ".[$EXTRAS]"
python -c "import unifiedreward, torch, transformers; print(f'[setup] ok: unifiedreward {unifiedreward.__version__}, torch {torch.__version__}, transformers {transformers.__version__}')"
