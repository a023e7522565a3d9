#!/usr/bin/env bash
# Whether NVIDIA's MPS lets graph_transformer's seed processes overlap on the card: its captured training steps, three
# seeds in three processes (bench/graph_transformer_seeds.py procs 3), without and with an MPS daemon (procs-mps: the
# workflow's own, siteaug/runtime/mps.py), then one seed alone under MPS. Without MPS three processes took about three
# times one seed's time (H100: 0.98-1.26 s an epoch each, against 0.36-0.39 s alone; bench/RESULTS.md, third
# session). Every process builds the synthetic graphs first, which takes most of a minute: allow about 120 s a mode
# (a first try with 50 s a mode printed nothing). JSON lines go to $OUT/mps_probe.jsonl, a summary line per mode to
# the console.
# Other modes of graph_transformer_seeds.py, each as MODE:K, may follow (e.g. single:1 compiled:1 procs-mps:2).
# Usage: bash bench/mps_probe.sh [EPOCHS] [SECONDS_PER_MODE] [MODE:K ...]
epochs=${1:-6}; limit=${2:-150}; shift 2 2>/dev/null
source bench/device_env.sh > /dev/null 2>&1
nvidia-smi --query-gpu=name --format=csv,noheader
probe() {  # probe LABEL MODE K
  local line
  line=$(timeout $limit python3 bench/graph_transformer_seeds.py $2 $3 $epochs 2>/dev/null | tail -1)
  [ -z "$line" ] && { echo "$1: no result within $limit s"; return; }
  echo "{\"label\": \"$1\", \"result\": $line}" >> $OUT/mps_probe.jsonl
  python3 -c "import json,sys; d=json.loads(sys.argv[2]); runs=d.get('children',[d])
med=lambda xs: sorted(xs)[len(xs)//2]
print(sys.argv[1], 's per epoch (median of each process):', [round(med(r['s_per_epoch']),3) for r in runs])" "$1" "$line"
}
if [ $# -gt 0 ]; then
  for spec in "$@"; do probe "$spec" ${spec%%:*} ${spec##*:}; done
  exit
fi
probe "3 processes, no MPS" procs 3
probe "3 processes, MPS" procs-mps 3
probe "1 process, MPS" procs-mps 1
