import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.features.residues import build_feature_tables, standardise
from siteaug.runtime.io import read_parquet, write_json, write_parquet
from siteaug.runtime.tables import feature_columns
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    proteins = read_parquet(snakemake.input[0])
    p = snakemake.params
    residues, edges = build_feature_tables(
        proteins, p.radii, p.graph_radius, threads=snakemake.threads, progress=True, groups=p.groups,
        precomputed=dict(p.precomputed), distance_maps=p.distance_maps, invalid_protein=p.invalid_protein,
    )
    residues, stats = standardise(residues, feature_columns(residues))
    log.info("%d residues, %d features, %d directed edges", len(residues), len(stats), len(edges))
    write_parquet(residues, snakemake.output.residues)
    write_parquet(edges, snakemake.output.edges)
    write_json(stats, snakemake.output.standardisation)
