#!/usr/bin/env bash
# Issue 13 on one lent GPU: DNA-573 and PPI-335 side by side (8 cores each; GPU jobs take turns through the GPU lock),
# every arm of bench/issue13_arms.yaml trained with 3 seeds, then the generation metrics in feature and embedding
# space (bench/sample_quality_tables.py). The report (bootstrap) is computed afterwards from the returned predictions
# (bench/issue13_report.py), so matplotlib need not travel. Usage: bash bench/issue13_both.sh [SECONDS]
limit=${1:-480}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
d=/tmp/data/graphppis_ppi/graphppis_ppi
printf "input:\n  labels: /tmp/data/graphsite_dna/graphsite_dna/DNA_Train_573.fa\n  structures: /tmp/data/graphsite_dna/graphsite_dna/pdb\n" > /tmp/dna_paths.yaml
printf "input:\n  labels: $d/Train_335.fa\nfeatures:\n  precomputed:\n    pssm: $d/features/pssm\n    hmm: $d/features/hmm\n    dssp: $d/features/dssp\n  distance_maps: $d/features/distance_map\n" > /tmp/ppi_paths.yaml
arms=$(python3 -c "import yaml; print(' '.join(yaml.safe_load(open('bench/issue13_arms.yaml'))['classifier']['arms']))")
targets() { for a in $arms; do echo results/classifier/$a/predictions.parquet; done; }
run() {  # name, workdir, config files...
  name=$1; dir=$2; shift 2
  mkdir -p $dir && cp -r config $dir/
  (cd $dir && timeout $limit python3 -m snakemake $(targets) results/embedding/generated/shard_0.parquet \
     results/embedding/generated/shard_1.parquet -s $OLDPWD/Snakefile --configfile "$@" --cores 8 --resources gpu=1 \
     --scheduler greedy --keep-going -q > snakemake.out 2>&1; echo "$name snakemake exit $?")
}
start=$(date +%s)
run dna573 /tmp/w_dna $PWD/config/dna573.yaml $PWD/bench/issue13_arms.yaml /tmp/dna_paths.yaml &
run ppi335 /tmp/w_ppi $PWD/config/ppi335.yaml $PWD/config/ppi335_gpu.yaml $PWD/bench/issue13_arms.yaml /tmp/ppi_paths.yaml &
wait
echo "both done after $(( $(date +%s) - start )) s"
for name in dna573 ppi335; do
  w=/tmp/w_${name:0:3}
  for space in features embedding; do
    timeout 60 python3 bench/sample_quality_tables.py $w/results --space $space --threads 8 --json $w/results/quality_$space.json 2>&1 | tail -1 &
  done
done
wait
for name in dna573 ppi335; do
  w=/tmp/w_${name:0:3}; grep -h -A8 "Error\|Traceback" $w/snakemake.out | tail -20
  (cd $w/results && tar -czf $OUT/$name.tar.gz logs benchmarks data/proteins.parquet classifier/*/predictions.parquet \
     classifier/*/summary.json quality_*.json diffusion/history.json embedding/diffusion/history.json \
     balanced/summary.json embedding/balanced/summary.json 2>/dev/null)
  python3 bench/workflow_stages.py $w/results --json /dev/null | sort -k2 -n -r | head -8
done
