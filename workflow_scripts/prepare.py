import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.inputs.prepare import prepare_proteins
from siteaug.runtime.config_checks import check_config_against_data, expected_feature_count
from siteaug.runtime.io import write_parquet
from siteaug.runtime.workflow import rule_logging

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
    # Neighbour counts and the candidate table's memory against this data, before any stage that would crash on them.
    # The config is read whole rather than through params: a change to these keys must not rerun the workflow.
    check_config_against_data(proteins, snakemake.config, expected_feature_count(snakemake.config, proteins))
    log.info("proteins per split: %s", proteins["split"].value_counts().to_dict())
    write_parquet(proteins, snakemake.output[0])
