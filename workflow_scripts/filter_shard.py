import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

import numpy as np

from siteaug.arms.classifier import MLPClassifier
from siteaug.generative.quality import RealismModel, passed_filter, quality_scores, top_per_protein
from siteaug.runtime.device import configured_gpu_slot, resolve_device
from siteaug.runtime.io import read_parquet, write_parquet
from siteaug.runtime.tables import feature_columns, train_rows
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log, configured_gpu_slot(snakemake.params.gpu):
    p = snakemake.params
    residues = read_parquet(snakemake.input.residues)
    candidates = read_parquet(snakemake.input.candidates)
    train = train_rows(residues)
    cols = feature_columns(candidates)
    X = candidates[cols].to_numpy(np.float32)
    device = resolve_device(p.device)
    critic = MLPClassifier.load(snakemake.input.critic, device).predict_proba(X)
    positives = train.loc[train["label"] == 1, cols].to_numpy()
    realism, near_copy = RealismModel.fit(positives, p.knn_k, device).score(X, p.near_copy_fraction)
    scores = candidates[["protein_id", "candidate_id"]].assign(
        critic=critic.astype(np.float32), realism=realism.astype(np.float32), near_copy=near_copy,
        quality_score=quality_scores(critic, realism, near_copy),
    )
    # The filter's decision, recorded once: later stages read `passed` instead of applying the threshold again.
    scores["passed"] = passed_filter(scores["quality_score"].to_numpy(), p.threshold)
    quota = read_parquet(snakemake.input.plan).set_index("protein_id")["quota"]  # rule plan_generation
    passed = candidates.assign(quality_score=scores["quality_score"].to_numpy())[scores["passed"].to_numpy()]
    kept = top_per_protein(passed, quota)
    log.info(
        "%d candidates: %d near-copies, %d at or above threshold %.2f, %d kept after top-k per protein",
        len(scores), int(near_copy.sum()), int(scores["passed"].sum()), p.threshold, len(kept),
    )
    write_parquet(scores, snakemake.output.scores)
    write_parquet(kept, snakemake.output.kept)
