#!/usr/bin/env bash
# Issue 14 (and issue 13's held-out DNA figure) on one lent GPU: the whole DNA-573 arms comparison
# (config/dna573.yaml + config/dna573_arms.yaml: every arm, 3 seeds, ratio sweep, report) timed by bench/pipeline.py
# from an empty output folder, with GraphSite's DNA_Test_129 (AlphaFold2 models, the same source as DNA-573's) as the
# external test set. Carry .whl, .whl_mpl (the report's matplotlib), .devdata (graphsite_dna, dna_test129; never
# committed). Predictions, metrics, benchmarks and logs come back as $OUT/dna573.tar.gz. If the time limit stops the
# run, the stage times of the jobs that finished are printed, and a second call with RESUME=1 on the still-warm
# machine finishes it from the cached outputs (its time is then not a from-scratch figure).
# The GPU settings are config/dna573_arms.yaml's (gpu.mps, gpu.jobs_per_card, with --resources gpu=<jobs_per_card>):
# JOBS_PER_CARD=N lets N GPU jobs share the card instead, MPS=0 runs without NVIDIA's Multi-Process Service (the
# workflow starts its own daemon under gpu.mps). GPU_TRACE=1 records which processes use the card each second
# (bench/gpu_trace.sh; read with bench/gpu_trace.py). COMPILE=1 turns on classifier.graph_transformer.compile (the
# compiled training step and its warm-up job, compile_graph_transformer).
# SNAKEMAKE_ARG=ARG passes one more argument to the timed run, e.g. --set-threads=tree_scores=16 for a same-machine
# baseline of a change to a rule's threads. The scheduler is the workflow profile's (greedy, profiles/default).
# ALONE="ARM ..." then reruns each named arm's train_classifier job by itself (--forcerun, nothing else on the card), one
# after another, and prints its benchmark seconds: what the job costs without the rest of the run beside it.
# Usage: [RESUME=1] [JOBS_PER_CARD=N] [MPS=0] [COMPILE=1] [GPU_TRACE=1] [SNAKEMAKE_ARG=ARG] [ALONE="ARM ..."] bash bench/issue14_dna573_gpu.sh [SECONDS]
limit=${1:-560}
source bench/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
t=/tmp/data/dna_test129/dna_test129; d=/tmp/data/graphsite_dna/graphsite_dna
jobs=${JOBS_PER_CARD:-$(python3 -c "import yaml; print(yaml.safe_load(open('config/dna573_arms.yaml'))['gpu']['jobs_per_card'])")}
printf "input:\n  labels: $d/DNA_Train_573.fa\n  structures: $d/pdb\n  external_test_labels: $t/DNA_Test_129.fa\n  external_test_structures: $t/test129_pdb\ngpu:\n  jobs_per_card: $jobs\n" > /tmp/paths.yaml
[ "$MPS" = 0 ] && printf "  mps: false\n" >> /tmp/paths.yaml
[ "$COMPILE" = 1 ] && printf "classifier:\n  graph_transformer:\n    compile: true\n" >> /tmp/paths.yaml
configs="config/dna573.yaml config/dna573_arms.yaml /tmp/paths.yaml"
start=$(date +%s)
[ -n "$GPU_TRACE" ] && source bench/gpu_trace.sh && gpu_trace_start $OUT
if [ -z "$RESUME" ]; then
  timeout $limit python3 bench/pipeline.py --configfile $configs --cores 16 --output /tmp/pipe/results \
    --json $OUT/pipeline_dna573.json --resources gpu=$jobs ${SNAKEMAKE_ARG:+--snakemake-args=$SNAKEMAKE_ARG}
else
  python3 -m snakemake --configfile $configs /tmp/pipe/results_output_directory.yaml --unlock -q > /dev/null 2>&1
  timeout $limit python3 -m snakemake --configfile $configs /tmp/pipe/results_output_directory.yaml --cores 16 \
    --resources gpu=$jobs --benchmark-extended --rerun-incomplete > /tmp/pipe/resume.log 2>&1
fi
echo "exit $? after $(( $(date +%s) - start )) s"
[ -n "$GPU_TRACE" ] && gpu_trace_stop
tail -5 /tmp/pipe/results_snakemake.log; [ -n "$RESUME" ] && tail -8 /tmp/pipe/resume.log
python3 bench/workflow_stages.py /tmp/pipe/results --json $OUT/stages.json > /dev/null
mkdir -p /tmp/pipe/results/logs/alone
for arm in $ALONE; do
  job=/tmp/pipe/results/classifier/$arm/predictions.parquet
  cp /tmp/pipe/results/logs/train_classifier/$arm.log /tmp/pipe/results/logs/alone/$arm.in_run.log
  cp /tmp/pipe/results/benchmarks/train_classifier_$arm.tsv /tmp/pipe/results/logs/alone/$arm.in_run.tsv
  python3 -m snakemake --configfile $configs /tmp/pipe/results_output_directory.yaml --cores 16 --resources gpu=$jobs \
    --forcerun $job --until $job > /tmp/pipe/results/logs/alone/$arm.snakemake.log 2>&1
  rc=$?
  cp /tmp/pipe/results/logs/train_classifier/$arm.log /tmp/pipe/results/logs/alone/$arm.log
  echo "$arm alone: exit $rc, $(tail -1 /tmp/pipe/results/benchmarks/train_classifier_$arm.tsv | cut -f1) s"
done
(cd /tmp/pipe/results && tar -czf $OUT/dna573.tar.gz logs benchmarks report classifier/*/predictions.parquet \
   classifier/*/summary.json diffusion/history.json embedding/diffusion/history.json features/tree_scores.json \
   balanced/summary.json 2>/dev/null)
cp /tmp/pipe/results_snakemake.log $OUT/snakemake.log 2>/dev/null
ls -la $OUT
