#!/usr/bin/env bash
# Issue 13, PPI-335 on one lent GPU: points near the shipped graph_transformer config (bench/issue13_grid3_ppi.json:
# the shipped point, members 5, alpha 0.5, both, and gbdt on the same seeds), 3 seeds per point, each point's seeds side
# by side (--seed-processes 3), chosen on validation AUPRC only. Test predictions of every point come back as
# $OUT/grid3_ppi_predictions.tar.gz (the device tool returns no folder that deep) for the paired bootstrap of
# bench/issue13_report.py (graph model minus gbdt): unpack it and pass the folder.
# Carry .whl and .devdata_ppi. Usage: bash bench/issue13_grid3_ppi.sh [SECONDS for the grid]
limit=${1:-420}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
d=/tmp/data/graphppis_ppi/graphppis_ppi
printf "input:\n  labels: $d/Train_335.fa\nfeatures:\n  precomputed:\n    pssm: $d/features/pssm\n    hmm: $d/features/hmm\n    dssp: $d/features/dssp\n  distance_maps: $d/features/distance_map\n" > /tmp/ppi_paths.yaml
configs="$PWD/config/ppi335.yaml $PWD/config/ppi335_gpu.yaml $PWD/config/ppi335_arms.yaml /tmp/ppi_paths.yaml"
start=$(date +%s)
w=/tmp/w_ppi; mkdir -p $w && cp -r config $w/
(cd $w && python3 -m snakemake results/features/tree_scores.parquet -s $OLDPWD/Snakefile --configfile $configs \
   --cores 16 --scheduler greedy -q > snakemake.out 2>&1; echo "features + tree scores exit $? after $(( $(date +%s) - start )) s")
cp $w/results/features/tree_scores.json $OUT/ppi_tree_scores.json
timeout $limit python3 bench/graph_transformer_grid.py $w/results --grid "$(cat bench/issue13_grid3_ppi.json)" --config $configs \
  --device cuda --seeds 3 --workers 5 --threads 1 --seed-processes 3 --predictions /tmp/grid3_ppi_predictions \
  --json $OUT/grid3_ppi.json > $OUT/grid3_ppi.out 2>&1
echo "grid exit $? after $(( $(date +%s) - start )) s"
tar -czf $OUT/grid3_ppi_predictions.tar.gz -C /tmp/grid3_ppi_predictions .
grep -v '^{' $OUT/grid3_ppi.out | grep -v Warn | tail -12
