#!/usr/bin/env bash
# Issue 13 on one lent GPU, one dataset per call (the whole card and 16 cores): every arm of bench/issue13_arms.yaml
# with 3 seeds, the embedding-space pipeline behind the first graph_transformer seed, then the generation metrics in
# feature and embedding space (bench/sample_quality_tables.py). Predictions, summaries, logs and benchmarks come back
# as $OUT/NAME.tar.gz (ARMS_FILE: another overlay in place of bench/issue13_arms.yaml); the report's statistics are computed afterwards (bench/issue13_report.py), so matplotlib need
# not travel. Usage: bash bench/issue13_run.sh dna573|ppi335 [SECONDS] [ARMS_FILE]
name=$1; limit=${2:-480}; arms_file=${3:-bench/issue13_arms.yaml}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
case $name in
  dna573) printf "input:\n  labels: /tmp/data/graphsite_dna/graphsite_dna/DNA_Train_573.fa\n  structures: /tmp/data/graphsite_dna/graphsite_dna/pdb\n" > /tmp/paths.yaml
          configs="$PWD/config/dna573.yaml $PWD/$arms_file /tmp/paths.yaml" ;;
  ppi335) d=/tmp/data/graphppis_ppi/graphppis_ppi
          printf "input:\n  labels: $d/Train_335.fa\nfeatures:\n  precomputed:\n    pssm: $d/features/pssm\n    hmm: $d/features/hmm\n    dssp: $d/features/dssp\n  distance_maps: $d/features/distance_map\n" > /tmp/paths.yaml
          configs="$PWD/config/ppi335.yaml $PWD/config/ppi335_gpu.yaml $PWD/$arms_file /tmp/paths.yaml" ;;
  *) echo "usage: $0 dna573|ppi335 [SECONDS]" >&2; exit 2 ;;
esac
arms=$(python3 -c "import yaml; print(' '.join(yaml.safe_load(open('$arms_file'))['classifier']['arms']))")
# Generated rows of each space whose diffusion arm runs (their quality tables follow).
generated=results/embedding/generated/shard_0.parquet; spaces=embedding
if echo " $arms " | grep -q " diffusion "; then generated="$generated results/generated/shard_0.parquet"; spaces="features embedding"; fi
w=/tmp/w_$name; mkdir -p $w && cp -r config $w/
start=$(date +%s)
(cd $w && timeout $limit python3 -m snakemake $(for a in $arms; do echo results/classifier/$a/predictions.parquet; done) \
   $generated \
   -s $OLDPWD/Snakefile --configfile $configs --cores 16 --resources gpu=1 --scheduler greedy --keep-going -q \
   > snakemake.out 2>&1; echo "$name snakemake exit $? after $(( $(date +%s) - start )) s")
grep -h -B2 -A12 "Error\|Traceback" $w/snakemake.out | tail -30
for space in $spaces; do
  timeout 70 python3 bench/sample_quality_tables.py $w/results --space $space --threads 8 --json $w/results/quality_$space.json 2>&1 | tail -1 &
done
wait
(cd $w/results && tar -czf $OUT/$name.tar.gz logs benchmarks data/proteins.parquet classifier/*/predictions.parquet \
   classifier/*/summary.json quality_*.json diffusion/history.json embedding/diffusion/history.json \
   balanced/summary.json embedding/balanced/summary.json features/tree_scores.json 2>/dev/null)
python3 bench/workflow_stages.py $w/results --json /dev/null | sort -k2 -n -r | head -12
echo "all done after $(( $(date +%s) - start )) s"
