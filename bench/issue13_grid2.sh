#!/usr/bin/env bash
# Issue 13, fifth session, on one lent GPU: (1) DNA-573: does the out-of-fold tree score as a node input
# (classifier.graph_transformer.tree_input) help the graph model there too, as it did on PPI-335? (2) PPI-335: is there a
# point near the shipped config that is better on *validation*? Both datasets side by side (8 cores each): the workflow's
# features and tree_scores rules, then bench/graph_transformer_grid.py over bench/issue13_grid2_{dna,ppi}.json, 3 seeds
# per point, workers sharing the card. Test columns are printed for the record; choices use validation only.
# Usage: bash bench/issue13_grid2.sh [SECONDS for each grid]
limit=${1:-360}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
d=/tmp/data/graphppis_ppi/graphppis_ppi
printf "input:\n  labels: /tmp/data/graphsite_dna/graphsite_dna/DNA_Train_573.fa\n  structures: /tmp/data/graphsite_dna/graphsite_dna/pdb\n" > /tmp/dna_paths.yaml
printf "input:\n  labels: $d/Train_335.fa\nfeatures:\n  precomputed:\n    pssm: $d/features/pssm\n    hmm: $d/features/hmm\n    dssp: $d/features/dssp\n  distance_maps: $d/features/distance_map\n" > /tmp/ppi_paths.yaml
start=$(date +%s)
grid() {  # name, workdir, grid file, config files...
  name=$1; dir=$2; points=$3; shift 3
  mkdir -p $dir && cp -r config $dir/
  (cd $dir && python3 -m snakemake results/features/tree_scores.parquet -s $OLDPWD/Snakefile --configfile "$@" \
     --cores 8 --scheduler greedy -q > snakemake.out 2>&1; echo "$name features + tree scores exit $? after $(( $(date +%s) - start )) s")
  grep -h '"chosen"\|auprc' $dir/results/features/tree_scores.json | head -3
  timeout $limit python3 bench/graph_transformer_grid.py $dir/results --grid "$(cat $points)" --config "$@" \
    --device cuda --seeds 3 --workers 3 --threads 2 --json $OUT/grid2_$name.json > $OUT/grid2_$name.out 2>&1
  echo "$name grid exit $? after $(( $(date +%s) - start )) s"
}
grid dna573 /tmp/w_dna bench/issue13_grid2_dna.json $PWD/config/dna573.yaml $PWD/config/dna573_arms.yaml /tmp/dna_paths.yaml &
grid ppi335 /tmp/w_ppi bench/issue13_grid2_ppi.json $PWD/config/ppi335.yaml $PWD/config/ppi335_gpu.yaml $PWD/config/ppi335_arms.yaml /tmp/ppi_paths.yaml &
wait
cp /tmp/w_dna/results/features/tree_scores.json $OUT/dna_tree_scores.json; cp /tmp/w_ppi/results/features/tree_scores.json $OUT/ppi_tree_scores.json
for n in dna573 ppi335; do echo "== $n"; grep -v '^{' $OUT/grid2_$n.out | grep -v Warn | tail -12; done
echo "all done after $(( $(date +%s) - start )) s"
