import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.arms.graph_transformer import GraphTransformerClassifier, embedding_table
from siteaug.arms.seed_processes import seed_model_path
from siteaug.arms.tree_scores import with_tree_scores
from siteaug.features.residues import standardise
from siteaug.runtime.device import resolve_device
from siteaug.runtime.io import read_parquet, write_json, write_parquet
from siteaug.runtime.tables import feature_columns
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    p = snakemake.params
    residues = read_parquet(snakemake.input.residues)
    edges = read_parquet(snakemake.input.edges)
    if "tree_scores" in snakemake.input.keys():  # the model was trained with them as a node feature
        residues = with_tree_scores(residues, read_parquet(snakemake.input.tree_scores))
    # The base model of the config's seed (the graph_transformer arm's first seed), trained on real rows only.
    model_path = seed_model_path(snakemake.input.model, p.seed)
    model = GraphTransformerClassifier.load(model_path, resolve_device(p.device))
    if model.config.tree_input != ("tree_scores" in snakemake.input.keys()):
        raise ValueError(f"{model_path} was trained with tree_input {model.config.tree_input}; rerun its train_embedding_model job")
    table = embedding_table(model, residues, edges, feature_columns(residues))
    # Standardised with training-split statistics only, as the feature table is.
    table, stats = standardise(table, feature_columns(table))
    log.info("%d residues embedded in %d dimensions by %s (epoch %s)", len(table), len(stats), model_path, model.best_epoch)
    write_parquet(table, snakemake.output.residues)
    write_json(stats, snakemake.output.standardisation)
