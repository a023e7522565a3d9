#!/usr/bin/env bash
# Issue 14 on one lent GPU, the critical path's first half only: the DNA-573 workflow (config/dna573.yaml +
# config/dna573_arms.yaml, DNA_Test_129 as the external test set) from an empty output folder up to the
# graph_transformer arm (prepare, features, tree_scores, train_classifier graph_transformer), with a
# classifier.graph_transformer.cuda_graph setting (CUDA_GRAPH=true|false, default true) and compile setting
# (COMPILE=true|false, default false; true adds the compile_graph_transformer job beside features and tree_scores).
# Prints the jobs' benchmark times and returns the arm's predictions, summary, log and the benchmarks as
# $OUT/gt_<CUDA_GRAPH>_<COMPILE>.tar.gz. Carry .whl and .devdata.
# Usage: [CUDA_GRAPH=false] [COMPILE=true] bash bench/issue14_gt_gpu.sh [SECONDS]
limit=${1:-300}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
t=/tmp/data/dna_test129/dna_test129; d=/tmp/data/graphsite_dna/graphsite_dna
out=/tmp/gt_${CUDA_GRAPH:-true}_${COMPILE:-false}/results
printf "input:\n  labels: $d/DNA_Train_573.fa\n  structures: $d/pdb\n  external_test_labels: $t/DNA_Test_129.fa\n  external_test_structures: $t/test129_pdb\noutput:\n  directory: $out\nclassifier:\n  graph_transformer:\n    cuda_graph: ${CUDA_GRAPH:-true}\n    compile: ${COMPILE:-false}\n" > /tmp/gt_paths.yaml
start=$(date +%s)
timeout $limit python3 -m snakemake --configfile config/dna573.yaml config/dna573_arms.yaml /tmp/gt_paths.yaml --cores 16 \
  --resources gpu=1 $out/classifier/graph_transformer/summary.json > /tmp/gt_run.log 2>&1
echo "exit $? after $(( $(date +%s) - start )) s"; tail -3 /tmp/gt_run.log
for f in $out/benchmarks/*.tsv; do printf "%-50s %s\n" "$(basename $f .tsv)" "$(tail -1 $f | cut -f1)"; done
(cd $out && tar -czf $OUT/gt_${CUDA_GRAPH:-true}_${COMPILE:-false}.tar.gz logs benchmarks \
   classifier/graph_transformer/predictions.parquet \
   classifier/graph_transformer/summary.json 2>/dev/null)
