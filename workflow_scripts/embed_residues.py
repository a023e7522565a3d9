import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from pathlib import Path

from threadpoolctl import threadpool_limits

from siteaug.arms.graph_transformer import embedding_table
from siteaug.arms.protocol import fit_one_seed, read_arm_inputs
from siteaug.arms.registry import ARM_INPUTS, EMBEDDING_MODEL_ARM
from siteaug.arms.seed_processes import save_seed_fit
from siteaug.features.residues import standardise
from siteaug.runtime.io import write_json, write_parquet
from siteaug.runtime.tables import feature_columns
from siteaug.runtime.workflow import compile_threads, numbered_bars, rounded, rule_logging

with rule_logging(snakemake) as log, threadpool_limits(snakemake.threads):
    p, i = snakemake.params, snakemake.input
    if "compiled_step" in i.keys():
        compile_threads(1)  # the cache holds the step: no worker pool
    residues, balanced, edges = read_arm_inputs(**{key: i.get(key) for key in ARM_INPUTS})
    # The base model: the arm's first seed (the config's seed), trained on real rows only, exactly as the arm's job would
    # fit it; that job reads this fit instead (train_arm's ``fitted``).
    model, val_scores, test_scores, info = fit_one_seed(
        EMBEDDING_MODEL_ARM, residues, p.settings, p.ratio, p.seed, balanced=balanced, edges=edges,
        device=p.settings["device"], threads=snakemake.threads,
        progress=numbered_bars(f"embed_residues: {EMBEDDING_MODEL_ARM} seed {p.seed}", p.settings["graph_transformer"]["members"]),
    )
    log.info("arm %s seed %d: %s", EMBEDDING_MODEL_ARM, p.seed, rounded(info))
    folder = Path(snakemake.output.model)
    folder.mkdir(parents=True, exist_ok=True)
    save_seed_fit(folder, p.seed, model, val_scores, test_scores, info)
    table = embedding_table(model, residues, edges, feature_columns(residues))
    # Standardised with training-split statistics only, as the feature table is.
    table, stats = standardise(table, feature_columns(table))
    log.info("%d residues embedded in %d dimensions by seed %d (epoch %s)", len(table), len(stats), p.seed, model.best_epoch)
    write_parquet(table, snakemake.output.residues)
    write_json(stats, snakemake.output.standardisation)
