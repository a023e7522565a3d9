import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

import numpy as np

from siteaug.evaluation.figures import save_png
from siteaug.evaluation.sample_quality import loss_curve_figure, pca_figure, sample_quality, score_histogram_figure
from siteaug.runtime.io import InputError, read_parquet, write_json, write_text
from siteaug.runtime.tables import feature_columns, read_json, read_parquet_parts, split_rows
from siteaug.runtime.workflow import rounded, rule_logging

with rule_logging(snakemake) as log:
    p, i = snakemake.params, snakemake.input
    residues = read_parquet(i.residues)
    cols = feature_columns(residues)
    generated = read_parquet_parts(i.generated)
    scores = read_parquet_parts(i.scores)
    if generated.empty:
        raise InputError(f"{i.generated[0]}: no generated candidates in any shard; there is nothing to measure")
    positives = residues[residues["label"] == 1]
    train_real = split_rows(positives, "train")[cols].to_numpy(np.float32)
    held_back = split_rows(positives, "validation")[cols].to_numpy(np.float32)
    synthetic = generated[cols].to_numpy(np.float32)
    q = p.quality
    metrics = sample_quality(train_real, held_back, synthetic, p.seed, q["knn_k"], q["max_rows"], q["c2st_folds"], threads=snakemake.threads)
    quality = scores["quality_score"].to_numpy()
    history = read_json(i.history)
    metrics.update(
        sampler=p.sampler,
        sampler_steps=p.sampler_steps,
        candidates=len(generated),
        filter_threshold=p.threshold,
        filter_acceptance_rate=float(scores["passed"].mean()),  # filter_shard's decision, not the threshold again
        near_copy_fraction=float(scores["near_copy"].mean()),
    )
    log.info("sample quality: %s", rounded(metrics))
    write_json(metrics, snakemake.output.json)
    write_text("metric\tvalue\n" + "".join(f"{k}\t{'null' if v is None else v}\n" for k, v in metrics.items()), snakemake.output.tsv)
    save_png(pca_figure(train_real, synthetic, p.seed), snakemake.output.pca)
    save_png(score_histogram_figure(quality, p.threshold), snakemake.output.scores)
    save_png(loss_curve_figure(history), snakemake.output.loss)
