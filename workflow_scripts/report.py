import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from pathlib import Path

import numpy as np

from siteaug.arm_registry import EMBEDDING_TABLE, FEATURE_TABLE, RATIO_SWEEP, SHARED, lookup_arm, sweep_ratio
from siteaug.io import read_parquet
from siteaug.provenance import checksums, machine_provenance
from siteaug.report import benchmark_intervals, build_report, read_benchmarks
from siteaug.tables import SPLITS, read_json, read_parquet_parts
from siteaug.workflow import rule_logging

with rule_logging(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    predictions = {arm: read_parquet(path) for arm, path in zip(p.arms, i.predictions)}
    training = {arm: read_json(path) for arm, path in zip(p.arms, i.training)}
    proteins = read_parquet(i.proteins)
    scores = read_parquet_parts(i.scores)
    balance = read_json(i.balance)
    stage_counts = {f"proteins ({split})": int((proteins["split"] == split).sum()) for split in SPLITS}
    stage_counts |= {
        "real training positives": balance["real_positives"],
        "real training negatives": balance["real_negatives"],
        "synthetic positives needed": balance["synthetic_needed"],
        "candidates generated": len(scores),
        "candidates rejected as near-copies": int(scores["near_copy"].sum()),
        f"candidates with score >= {p.threshold}": int(scores["passed"].sum()),  # filter_shard's decision
        "synthetic positives kept (top-k per protein)": balance["synthetic_available"],
        "synthetic positives used": balance["synthetic_used"],
        "real negatives kept": balance["real_negatives_kept"],
        "balanced training rows": balance["rows"],
        "achieved positive ratio": round(balance["achieved_positive_ratio"], 4),
    }
    # Our own benchmark is still being written; every other stage's is complete.
    benchmarks = sorted(b for b in Path(p.benchmarks).glob("*.tsv") if b.stem != "report")
    sweep = {arm: sweep_ratio(arm) for arm in p.arms if sweep_ratio(arm) is not None}
    if sweep and "diffusion" in predictions:
        sweep["diffusion"] = p.ratio
    extra_sections = dict(p.extra_sections)
    if "similar_to" in proteins:  # input.external_test_overlap: allow kept external test proteins seen in training
        kept = proteins[(proteins["source"] == "external_test") & (proteins["similar_to"] != "")]
        if len(kept):
            extra_sections["External test set overlap"] = {"text": (
                f"{len(kept)} external test protein(s) match an internal protein (identical, or at split.identity_threshold) "
                "and were kept because input.external_test_overlap is allow, so the external test set is not fully unseen: "
                + ", ".join(f"{a} ~ {b}" for a, b in zip(kept["protein_id"], kept["similar_to"])))}
    # Diffusion arms without a single synthetic row are real rows with negatives dropped, not diffusion augmentation.
    # The sweep arms draw from the same filtered rows as diffusion.
    reason = (f"it trained on 0 synthetic rows (no candidate reached quality_threshold {p.threshold}): real rows only, "
              "with real negatives dropped to reach its positive ratio, so it does not measure diffusion augmentation")
    synthetic_used = {FEATURE_TABLE: balance["synthetic_used"]}
    for path in i.embedding_balance:
        synthetic_used[EMBEDDING_TABLE] = read_json(path)["synthetic_used"]
    arms = {arm: lookup_arm(arm) for arm in p.arms}
    empty = {name for name, arm in arms.items()
             if arm.balanced in (SHARED, RATIO_SWEEP) and synthetic_used.get(arm.table) == 0}
    no_verdict = {arm: reason for arm in p.arms if arm in empty}
    for arm in no_verdict:
        log.warning("arm %s: no verdict, %s", arm, reason)
    metrics = build_report(
        predictions, Path(snakemake.output.html).parent, proteins=proteins, n_resamples=p.report["bootstrap_resamples"],
        confidence=p.report["confidence"], seed=p.seed, sweep=sweep, quality_scores=scores["quality_score"].to_numpy(np.float32),
        quality_threshold=p.threshold, stage_counts=stage_counts, training=training,
        timings=read_benchmarks(benchmarks) if benchmarks else None,
        job_intervals=benchmark_intervals(benchmarks) if benchmarks else None, extra_sections=extra_sections, no_verdict=no_verdict,
        quality_metrics=read_json(i.sample_quality), diffusion_history=read_json(i.history),
        provenance={"inputs": checksums(dict(p.inputs)), **machine_provenance(p.checkout), "config": dict(p.config)},
    )
    log.info("metrics:\n%s", metrics.to_string(index=False, float_format="%.4f"))
