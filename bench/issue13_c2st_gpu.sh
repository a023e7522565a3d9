#!/usr/bin/env bash
# Issue 13, item 3 on one lent GPU: the feature-space generator of DNA-573 and PPI-335 (GPU sizes) side by side, up to
# the generated shards; then bench/sample_quality_tables.py on each, and the row sets for bench/c2st_diagnosis.py
# (NAME_rows.parquet: real training and validation positives, 20,000 synthetic rows) and the diffusion history come
# back in $OUT. Carry .whl, .devdata, .devdata_ppi.
# RUNS: space-separated NAME[:OVERLAY] (NAME dna573 or ppi335; OVERLAY a config file added to that run; default
# "dna573 ppi335"). Each run gets 16 / (number of runs) cores.
# Usage: [RUNS="dna573 ppi335 dna573:bench/x.yaml"] bash bench/issue13_c2st_gpu.sh [SECONDS]
limit=${1:-420}
runs=${RUNS:-dna573 ppi335}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
d=/tmp/data/graphsite_dna/graphsite_dna
printf "input:\n  labels: $d/DNA_Train_573.fa\n  structures: $d/pdb\n" > /tmp/paths_dna573.yaml
p=/tmp/data/graphppis_ppi/graphppis_ppi
printf "input:\n  labels: $p/Train_335.fa\nfeatures:\n  precomputed:\n    pssm: $p/features/pssm\n    hmm: $p/features/hmm\n    dssp: $p/features/dssp\n  distance_maps: $p/features/distance_map\n" > /tmp/paths_ppi335.yaml
cores=$(( 16 / $(echo $runs | wc -w) ))
start=$(date +%s)
for run in $runs; do
  name=${run%%:*}; overlay=""; [ "$run" != "$name" ] && overlay=$PWD/${run#*:}
  tag=$name$([ -n "$overlay" ] && echo _$(basename ${overlay%.*}))
  case $name in
    dna573) configs="$PWD/config/dna573.yaml /tmp/paths_dna573.yaml $overlay" ;;
    ppi335) configs="$PWD/config/ppi335.yaml $PWD/config/ppi335_gpu.yaml /tmp/paths_ppi335.yaml $overlay" ;;
  esac
  w=/tmp/w_$tag; mkdir -p $w && cp -r config $w/
  (cd $w && timeout $limit python3 -m snakemake results/generated/shard_0.parquet results/generated/shard_1.parquet \
     -s $OLDPWD/Snakefile --configfile $configs --cores $cores --resources gpu=1 --scheduler greedy -q > snakemake.out 2>&1
   echo "$tag snakemake exit $? after $(( $(date +%s) - start )) s"
   grep -h -B2 -A12 "Error\|Traceback" snakemake.out | tail -20
   grep -h "column codec" results/logs/train_diffusion.log | cut -c1-400
   cd $OLDPWD
   timeout 100 python3 bench/c2st_diagnosis.py $w/results --export $OUT/${tag}_rows.parquet --export-only
   timeout 200 python3 bench/sample_quality_tables.py $w/results --threads $cores --json $OUT/${tag}_quality.json | cut -c1-600
   cp $w/results/diffusion/history.json $OUT/${tag}_history.json
   echo "$tag done after $(( $(date +%s) - start )) s") &
done
wait
ls -la $OUT
