#!/usr/bin/env bash
# graph_transformer's compiled training step (classifier.graph_transformer.compile) on one card: the compile
# cache's effect across processes, as the workflow's jobs would see it. In a fresh compile cache: (1) the warm-up
# (compile_training_step, random graphs of one feature) at config/dna573.yaml's model size, cold; then
# bench/graph_transformer_seeds.py on DNA-573-sized synthetic graphs of 81 features, each in a new process: (2)
# compiled, seed 0, and (3) compiled, seed 1 (another first batch), both reading the warm-up's compilation; (4) the
# captured eager step; (5) two compiled seeds in two processes under MPS. JSON lines go to $OUT/gt_compile.jsonl.
# Usage: bash bench/graph_transformer_compile.sh [EPOCHS]
epochs=${1:-6}
source bench/device_env.sh > /dev/null 2>&1
nvidia-smi --query-gpu=name --format=csv,noheader
export TORCHINDUCTOR_CACHE_DIR=$(mktemp -d /tmp/gt_compile_cache.XXXX)
python3 - <<'PY' | tee -a $OUT/gt_compile.jsonl
import json, time
t = time.perf_counter()
import siteaug.arms.graph_transformer as gt
import sys; sys.path.insert(0, "bench")
from graph_transformer_seeds import compile_counters as counters
cfg = gt.GraphTransformerConfig(input_dim=81, hidden=64, layers=6, heads=4, dropout=0.3, alpha=0.3, epochs=40, patience=8,
                                compile=True)
seconds = gt.compile_training_step(cfg, "cuda")
print(json.dumps({"label": "warm-up (compile_training_step), cold cache", "seconds": seconds,
                  "with_imports": time.perf_counter() - t, "compile_counters": counters()}))
PY
for spec in "compiled 1 $epochs 0" "compiled 1 $epochs 1" "single 1 $epochs 0" "procs-mps-compiled 2 $epochs"; do
  python3 bench/graph_transformer_seeds.py $spec 2>/dev/null | tail -1 | python3 -c "
import json, sys; d = json.loads(sys.stdin.read()); d['label'] = sys.argv[1]; print(json.dumps(d))" "$spec" | tee -a $OUT/gt_compile.jsonl
done
