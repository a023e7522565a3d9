#!/usr/bin/env bash
# Held-out PPI evaluation on GraphPPIS's Test_60 (kept out of this repository): builds the Test_60 label file and the
# per-residue arrays from a clone of biomed-AI/GraphPPIS, links them beside ../shared/datasets/graphppis_ppi's
# training arrays in one folder per group, runs the workflow's features and tree_scores stages with Test_60 as the
# external test set (so the internal split is train/validation only), then trains arms with
# bench/graph_transformer_grid.py: choices on validation, Test_60 figures reported, never used to choose.
# Usage: bash bench/heldout_ppi.sh GRAPHPPIS_CLONE WORK_DIR GRID_JSON [SEEDS] [OVERLAY.yaml ...]
# e.g.   PYTHON=.venv/bin/python bash bench/heldout_ppi.sh /path/GraphPPIS /tmp/t60 '[{"arm": "gbdt"}, {}]' 1
set -euo pipefail
PYTHON=${PYTHON:-python3}  # a Python with this project's requirements (e.g. .venv/bin/python)
clone=$1; work=$2; grid=$3; seeds=${4:-1}; shift $(( $# < 4 ? $# : 4 ))
train=$(cd "$(dirname "$0")/.." && pwd)/../shared/datasets/graphppis_ppi
mkdir -p "$work/heldout"
# The GraphPPIS FASTA files have CRLF line ends.
git -C "$clone" show HEAD:Dataset/Test_60.fa | tr -d '\r' > "$work/heldout/Test_60.fa"
for group in pssm hmm dssp distance_map; do
  mkdir -p "$work/heldout/$group"
  ln -sf "$train/features/$group/"*.npy "$work/heldout/$group/"
  for id in $(grep '>' "$work/heldout/Test_60.fa" | tr -d '>'); do
    # 3cf4A has no distance map in GraphPPIS: it gets sequence-neighbour edges (logged by the features rule).
    git -C "$clone" cat-file -e "HEAD:Feature/$group/$id.npy" 2>/dev/null || continue
    git -C "$clone" show "HEAD:Feature/$group/$id.npy" > "$work/heldout/$group/$id.npy"
  done
done
cat > "$work/test60.yaml" <<YAML
output: {directory: $work/results}
input: {external_test_labels: $work/heldout/Test_60.fa}
features:
  precomputed: {pssm: $work/heldout/pssm, hmm: $work/heldout/hmm, dssp: $work/heldout/dssp}
  distance_maps: $work/heldout/distance_map
YAML
cd "$(dirname "$0")/.."
"$PYTHON" -m snakemake --configfile config/ppi335.yaml "$work/test60.yaml" "$@" --cores "${CORES:-2}" --resources gpu=1 -q \
  -- "$work/results/features/tree_scores.parquet"
"$PYTHON" bench/graph_transformer_grid.py "$work/results" --grid "$grid" --config config/ppi335.yaml "$@" --seeds "$seeds" \
  --workers "${WORKERS:-1}" --threads "${THREADS:-2}" --json "$work/grid.json"
