import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from siteaug.evaluation.ablation import summarise, write_outputs
from siteaug.runtime.io import read_parquet
from siteaug.runtime.tables import read_json
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    p, i, o = snakemake.params, snakemake.input, snakemake.output
    predictions = {name: read_parquet(path) for name, path in zip(p.settings, i.predictions)}
    training = {name: read_json(path) for name, path in zip(p.settings, i.training)}
    rows = summarise(predictions, training, p.bootstrap_resamples, p.confidence, p.seed)
    protocol = {"arm": "none", "settings": p.settings, "aggregation": "pooled over residues", "splits": ["validation", "test"],
                "bootstrap_resamples": p.bootstrap_resamples, "confidence": p.confidence, "bootstrap_seed": p.seed,
                "unit_resampled": "protein", "seeds": "metric averaged over seeds in every resample",
                "differences": f"paired, each setting minus {rows[0]['setting']}"}
    write_outputs(rows, protocol, p.confidence, o.json, o.tsv, o.table, o.plot)
    log.info("feature ablation:\n%s", "\n".join(
        f"{r['setting']}: {r['features']} features, validation AUPRC {r['validation_auprc']:.3f}, test AUPRC {r['test_auprc']:.3f}"
        for r in rows))
