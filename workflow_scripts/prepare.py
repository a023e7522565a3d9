import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.io import write_parquet
from siteaug.prepare import prepare_proteins
from siteaug.workflow import rule_logging

with rule_logging(snakemake) as log:
    p, i = snakemake.params, snakemake.input
    proteins = prepare_proteins(
        i.labels,
        i.get("structures"),
        p.validation,
        p.test,
        p.seed,
        missing_structure=p.missing_structure,
        unknown_residue=p.unknown_residue,
        external_test_labels=i.get("external_test_labels"),
        external_test_structures=i.get("external_test_structures"),
        identity_threshold=p.identity_threshold,
        external_test_overlap=p.external_test_overlap,
    )
    log.info("proteins per split: %s", proteins["split"].value_counts().to_dict())
    write_parquet(proteins, snakemake.output[0])
