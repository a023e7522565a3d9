#!/usr/bin/env bash
# Issue 13 evidence on a lent GPU: the workflow on DNA-573 or PPI-335 with the arm set of bench/issue13_arms.yaml,
# from a clean results/, inside the call's time limit. Usage (repository root, device machine):
#   bash bench/issue13_gpu.sh dna573|ppi335 [SECONDS]
# Needs .whl/ and .devdata/<dataset>.tar.xz (bench/device_env.sh). Copies the report tables, generation-quality
# metrics, training summaries, logs and stage times to $OUT/<dataset>/.
dataset=$1; limit=${2:-540}
source bench/device_env.sh
case $dataset in
  dna573) base="config/dna573.yaml"
    printf 'input:\n  labels: /tmp/data/graphsite_dna/graphsite_dna/DNA_Train_573.fa\n  structures: /tmp/data/graphsite_dna/graphsite_dna/pdb\n' > /tmp/paths.yaml ;;
  ppi335) base="config/ppi335.yaml config/ppi335_gpu.yaml"
    d=/tmp/data/graphppis_ppi/graphppis_ppi
    printf "input:\n  labels: $d/Train_335.fa\nfeatures:\n  precomputed:\n    pssm: $d/features/pssm\n    hmm: $d/features/hmm\n    dssp: $d/features/dssp\n  distance_maps: $d/features/distance_map\n" > /tmp/paths.yaml ;;
esac
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
start=$(date +%s)
timeout "$limit" python3 -m snakemake --configfile $base bench/issue13_arms.yaml /tmp/paths.yaml --cores 16 \
  --resources gpu=1 --scheduler greedy --keep-going -q > /tmp/snakemake.out 2>&1
echo "snakemake exit $? after $(( $(date +%s) - start )) s"
tail -5 /tmp/snakemake.out
dest=$OUT/$dataset; mkdir -p "$dest"
# One archive: the device returns a limited number of files.
(cd results && tar -czf "$dest/results.tar.gz" logs benchmarks report/*.tsv report/*.json quality/metrics.json \
   embedding/quality/metrics.json */summary.json embedding/*/summary.json classifier/*/summary.json diffusion/history.json \
   embedding/diffusion/history.json balanced/*/summary.json 2>/dev/null)
mkdir -p "$dest/report" "$dest/quality" "$dest/embedding/quality"
for f in report/metrics.tsv report/differences.tsv quality/metrics.json embedding/quality/metrics.json; do
  [ -f results/$f ] && cp results/$f "$dest/$f"
done
grep -h -B2 -A12 "Error\|Traceback" results/logs/*.log results/logs/*/*.log 2>/dev/null | tail -40
python3 bench/workflow_stages.py results --json "$dest/stage_times.json" | sort -t'|' -k3 -n -r | head -30
python3 - "$dest" <<'PY'
import sys, pandas as pd, json, pathlib
d = pathlib.Path(sys.argv[1])
if (d / "report/metrics.tsv").exists():
    m = pd.read_csv(d / "report/metrics.tsv", sep="\t")
    m = m[m.aggregation == "pooled"]
    print(m[["test_set", "arm", "auroc", "auprc", "auprc_low", "auprc_high", "mcc"]].to_string(index=False))
    diff = pd.read_csv(d / "report/differences.tsv", sep="\t")
    diff = diff[(diff.aggregation == "pooled") & (diff.metric == "auprc")]
    print(diff[["arm", "reference", "difference", "low", "high"]].to_string(index=False))
for q in ("quality/metrics.json", "embedding/quality/metrics.json"):
    if (d / q).exists():
        v = json.loads((d / q).read_text())
        print(q, {k: v.get(k) for k in ("c2st_auc_continuous", "knn_precision", "knn_recall", "acceptance_rate", "mean_wasserstein")})
PY
