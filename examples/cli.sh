#!/usr/bin/env bash
# The modelport CLI end to end: list formats, export + validate, re-validate, inspect, compare, benchmark,
# publish to a local registry folder and pull back with sha256 verification.
#
#   examples/cli.sh [OUT_DIR]          # default: a temporary folder
#
# Exports to pt2 (built into the core) and, when modelport-export-onnx is installed, to onnx as well.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${1:-$(mktemp -d)}"
MODEL="$HERE/models.py:small_cnn"

# 1. what can export and validate on this machine (and the pip command for what is missing)
modelport formats

formats=pt2
if modelport formats --json | python3 -c 'import json, sys
rows = {r["name"]: r for r in json.load(sys.stdin)["formats"]}
sys.exit(0 if rows.get("onnx", {}).get("can_export") else 1)'; then
  formats=pt2,onnx
fi

# 2. export every format, validate each artifact against PyTorch (exit 2 if one does not match);
#    several formats get one folder each under --output-dir, a single format is written into it directly
dest="$OUT/cnn"
[ "$formats" = pt2 ] && dest="$OUT/cnn/pt2"
modelport export "$MODEL" --vision 3x32x32 --dynamic-batch -f "$formats" --task classification \
  --output-dir "$dest" --force

# 3. re-check later from the folder alone, and look inside
modelport validate "$OUT/cnn/pt2"
modelport inspect "$OUT/cnn/pt2/model.pt2"

# 4. the same inputs through two artifacts, then latency next to PyTorch eager
dirs=("$OUT/cnn/pt2")
if [ -d "$OUT/cnn/onnx" ]; then
  modelport compare "$OUT/cnn/onnx" "$OUT/cnn/pt2"
  dirs+=("$OUT/cnn/onnx")
fi
modelport bench "${dirs[@]}" --batch 1 --max-seconds 1

# 5. publish to a local registry (DIR/<model>/<version>/ + DIR/index.json), pull back, sha256 verified
modelport publish "$OUT/cnn/pt2" "file://$OUT/registry" --version v1
modelport pull "file://$OUT/registry/small_cnn/v1" "$OUT/deployed" --force
echo "done: exports in $OUT/cnn, registry in $OUT/registry, pulled copy in $OUT/deployed"
