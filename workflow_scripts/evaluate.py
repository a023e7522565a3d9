import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from threadpoolctl import threadpool_limits

from siteaug.arms.registry import EMBEDDING_TABLE, FEATURE_TABLE, RATIO_SWEEP, SHARED, lookup_arm
from siteaug.evaluation.comparison import compare, write_evaluation
from siteaug.runtime.io import read_parquet
from siteaug.runtime.tables import read_json
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    predictions = {arm: read_parquet(path) for arm, path in zip(p.arms, i.predictions)}
    training = {arm: read_json(path) for arm, path in zip(p.arms, i.training)}
    # Diffusion arms without a single synthetic row are real rows with negatives dropped, not diffusion augmentation.
    # The sweep arms draw from the same filtered rows as diffusion.
    reason = (f"it trained on 0 synthetic rows (no candidate reached quality_threshold {p.threshold}): real rows only, "
              "with real negatives dropped to reach its positive ratio, so it does not measure diffusion augmentation")
    # Each balanced table's summary, where its stages ran (none of the arms reads a table whose stages did not run).
    synthetic_used = {}
    for path in i.balance:
        synthetic_used[FEATURE_TABLE] = read_json(path)["synthetic_used"]
    for path in i.embedding_balance:
        synthetic_used[EMBEDDING_TABLE] = read_json(path)["synthetic_used"]
    arms = {arm: lookup_arm(arm) for arm in p.arms}
    no_verdict = {name: reason for name, arm in arms.items()
                  if arm.balanced in (SHARED, RATIO_SWEEP) and synthetic_used.get(arm.table) == 0}
    for arm in no_verdict:
        log.warning("arm %s: no verdict, %s", arm, reason)
    # One arm per thread, each with single-threaded BLAS: arms side by side scale better than threads inside one
    # product of this size, and the two together would oversubscribe the cores.
    with threadpool_limits(1):
        evaluation = compare(predictions, read_parquet(i.proteins), n_resamples=p.bootstrap_resamples, confidence=p.confidence,
                             seed=p.seed, no_verdict=no_verdict, training=training, workers=snakemake.threads)
    metrics = write_evaluation(evaluation, snakemake.output.tsv, snakemake.output.differences, snakemake.output.json)
    log.info("metrics:\n%s", metrics.to_string(index=False, float_format="%.4f"))
