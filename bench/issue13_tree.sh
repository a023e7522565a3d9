#!/usr/bin/env bash
# Issue 13, PPI-335: does graph_transformer with the out-of-fold tree score as a node input (classifier.graph_transformer
# .tree_input, siteaug/arms/tree_scores.py) beat the plain graph model and gbdt on *validation*? Runs on one lent GPU from
# the features stage's tables carried in .devdata/ppi_features/ (made here by the workflow; no raw data travels):
# the tree_scores rule's computation, then bench/graph_transformer_grid.py over the points of bench/issue13_tree_grid.json
# (3 seeds each, 4 workers sharing the card). Usage: bash bench/issue13_tree.sh [SECONDS for the grid]
limit=${1:-420}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
w=/tmp/w_ppi/results/features; mkdir -p $w && cp .devdata/ppi_features/* $w/
start=$(date +%s)
python3 - <<'PY'
import json, time
import yaml
from siteaug.runtime.io import read_parquet, write_parquet
from siteaug.arms.tree_scores import out_of_fold_tree_scores
schema = yaml.safe_load(open("config/schema.yaml"))
gbdt = {k: v["default"] for k, v in schema["properties"]["classifier"]["properties"]["gbdt"]["properties"].items()}
t = time.perf_counter()
table, summary = out_of_fold_tree_scores(read_parquet("/tmp/w_ppi/results/features/residues.parquet"), gbdt, 0)  # config seed
write_parquet(table, "/tmp/w_ppi/results/features/tree_scores.parquet")
print("tree scores", json.dumps(summary), f"{time.perf_counter() - t:.1f} s", flush=True)
PY
echo "tree scores done after $(( $(date +%s) - start )) s"
timeout $limit python3 bench/graph_transformer_grid.py /tmp/w_ppi/results --grid "$(cat bench/issue13_tree_grid.json)" \
  --config config/ppi335.yaml config/ppi335_gpu.yaml bench/issue13_arms.yaml --device cuda --seeds 3 --workers 4 \
  --threads 3 --json $OUT/tree_grid_ppi.json > $OUT/tree_grid_ppi.out 2>&1
echo "grid exit $? after $(( $(date +%s) - start )) s"; grep -v '^{' $OUT/tree_grid_ppi.out | grep -v Warn | tail -14
