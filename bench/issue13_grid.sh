#!/usr/bin/env bash
# graph_transformer hyper-parameters for DNA-573 and PPI-335 on one lent GPU, chosen on validation AUPRC only
# (bench/graph_transformer_grid.py): the features stage of each dataset, then both grids side by side (4 workers each
# sharing the card). Usage: bash bench/issue13_grid.sh [SECONDS for the grids]
limit=${1:-420}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
d=/tmp/data/graphppis_ppi/graphppis_ppi
printf "input:\n  labels: /tmp/data/graphsite_dna/graphsite_dna/DNA_Train_573.fa\n  structures: /tmp/data/graphsite_dna/graphsite_dna/pdb\n" > /tmp/dna_paths.yaml
printf "input:\n  labels: $d/Train_335.fa\nfeatures:\n  precomputed:\n    pssm: $d/features/pssm\n    hmm: $d/features/hmm\n    dssp: $d/features/dssp\n  distance_maps: $d/features/distance_map\n" > /tmp/ppi_paths.yaml
features() {  # workdir, config files...
  dir=$1; shift
  mkdir -p $dir && cp -r config $dir/
  (cd $dir && python3 -m snakemake results/features/residues.parquet results/features/edges.parquet -s $OLDPWD/Snakefile \
     --configfile "$@" --cores 8 --scheduler greedy -q > features.out 2>&1; echo "$dir features exit $?"; tail -3 features.out)
}
start=$(date +%s)
features /tmp/w_dna $PWD/config/dna573.yaml $PWD/bench/issue13_arms.yaml /tmp/dna_paths.yaml &
features /tmp/w_ppi $PWD/config/ppi335.yaml $PWD/config/ppi335_gpu.yaml $PWD/bench/issue13_arms.yaml /tmp/ppi_paths.yaml &
wait
echo "features done after $(( $(date +%s) - start )) s"
grid() {  # name, workdir, grid json, config files...
  name=$1; dir=$2; points=$3; shift 3
  timeout $limit python3 bench/graph_transformer_grid.py $dir/results --grid "$points" --config "$@" --device cuda \
    --seeds 2 --workers 4 --threads 2 --json $OUT/grid_$name.json > $OUT/grid_$name.out 2>&1
  echo "$name grid exit $?"; grep -v '^{' $OUT/grid_$name.out | grep -v Warn | tail -20
}
grid ppi /tmp/w_ppi "$(cat bench/issue13_grid_ppi.json)" config/ppi335.yaml config/ppi335_gpu.yaml bench/issue13_arms.yaml /tmp/ppi_paths.yaml &
grid dna /tmp/w_dna "$(cat bench/issue13_grid_dna.json)" config/dna573.yaml bench/issue13_arms.yaml /tmp/dna_paths.yaml &
wait
echo "all done after $(( $(date +%s) - start )) s"
