import _checkout  # noqa: F401  (sys.path: this checkout's siteaug)

from pathlib import Path

from siteaug.evaluation.report import report_page
from siteaug.evaluation.stage_timing import benchmark_intervals, read_benchmarks
from siteaug.runtime.io import read_parquet, write_json, write_text
from siteaug.runtime.provenance import checksums, machine_provenance
from siteaug.runtime.tables import SPLITS, read_json, read_parquet_parts
from siteaug.runtime.workflow import rule_logging

with rule_logging(snakemake) as log:
    i, p = snakemake.input, snakemake.params
    proteins = read_parquet(i.proteins)
    stage_counts = {f"proteins ({split})": int((proteins["split"] == split).sum()) for split in SPLITS}
    # The generation stages' inputs are there when they ran (rules/common.smk, GENERATION); without them the page's
    # "Generation quality" section says they were not run, and the counts stop at the real rows.
    generated = bool(i.balance)
    if generated:
        scores = read_parquet_parts(i.scores, columns=["near_copy", "passed"])
        balance = read_json(i.balance[0])
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
    else:
        training = proteins[proteins["split"] == "train"]
        stage_counts |= {
            "real training positives": int(training["n_positives"].sum()),
            "real training negatives": int((training["n_residues"] - training["n_positives"]).sum()),
        }
    extra_sections = dict(p.extra_sections)
    if "similar_to" in proteins:  # input.external_test_overlap: allow kept external test proteins seen in training
        kept = proteins[(proteins["source"] == "external_test") & (proteins["similar_to"] != "")]
        if len(kept):
            extra_sections["External test set overlap"] = {"text": (
                f"{len(kept)} external test protein(s) match an internal protein (identical, or at split.identity_threshold) "
                "and were kept because input.external_test_overlap is allow, so the external test set is not fully unseen: "
                + ", ".join(f"{a} ~ {b}" for a, b in zip(kept["protein_id"], kept["similar_to"])))}
    provenance = {"inputs": checksums(dict(p.inputs)), **machine_provenance(p.checkout), "config": dict(p.config)}
    page = report_page(
        read_json(i.evaluation), figures={Path(path).name: path for path in i.figures}, stage_counts=stage_counts,
        timings=read_benchmarks(i.benchmarks), job_intervals=benchmark_intervals(i.benchmarks), extra_sections=extra_sections,
        quality_metrics=read_json(i.sample_quality[0]) if generated else None,
        diffusion_history=read_json(i.history[0]) if generated else None, provenance=provenance,
    )
    write_json(provenance, snakemake.output.provenance)
    write_text(page, snakemake.output.html)
    log.info("wrote %s", snakemake.output.html)
